import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset
from torchvision.models.resnet import BasicBlock, ResNet

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

CHECK = "output_head"


def classifier_ending_in(*tail: nn.Module) -> nn.Module:
    return nn.Sequential(zoo.mlp(), *tail)


class FunctionalHead(nn.Module):
    """A classifier whose last op is applied as a function in forward."""

    def __init__(self, squash, dim: int = 20, classes: int = 4):
        super().__init__()
        self.body = zoo.mlp(dim=dim, classes=classes)
        self.squash = squash

    def forward(self, x):
        return self.squash(self.body(x))


class DictOutput(nn.Module):
    def __init__(self, squash=None):
        super().__init__()
        self.body = zoo.mlp()
        self.squash = squash

    def forward(self, x):
        logits = self.body(x)
        return {"logits": logits if self.squash is None else self.squash(logits), "features": x}


def deep_leaky_softmax(depth: int = 30, width: int = 16) -> nn.Module:
    """Seed 000: ~30 orthogonally initialized LeakyReLU(1/3) layers, softmax output, cross-entropy."""
    layers = []
    for i in range(depth):
        linear = nn.Linear(20 if i == 0 else width, width)
        nn.init.orthogonal_(linear.weight)
        layers += [linear, nn.LeakyReLU(1 / 3)]
    return nn.Sequential(*layers, nn.Linear(width, 4), nn.Softmax(dim=1))


def regression_targets(low: float, high: float, n: int = 256, dim: int = 8) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, dim, generator=g)
    return TensorDataset(x, low + (high - low) * torch.rand(n, 1, generator=g))


def regressor(*tail: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), *tail)


class ScaledTanh(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.net = regressor()
        self.scale = scale

    def forward(self, x):
        return torch.tanh(self.net(x)) * self.scale


def hand_written_log_loss(out, y):
    return -(F.one_hot(y, out.shape[1]) * torch.log(out)).sum(1).mean()


# ------------------------------------------------------------------------------------ sound


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case(CHECK, case)
    assert result.status in (Status.PASS, Status.SKIP), result.summary


def test_regression_summary_names_linear_output_and_target_range():
    case = zoo.sound_case("regression")
    result = run_check(CHECK, case.model, case.dataset, case.loss_fn)
    assert result.status is Status.PASS
    assert result.summary.startswith("linear output, targets in [")


def test_log_softmax_with_nll_loss_passes():
    result = run_check(CHECK, classifier_ending_in(nn.LogSoftmax(dim=1)), zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.PASS, result.summary
    assert "log-probabilities" in result.summary


def test_log_softmax_with_cross_entropy_passes_as_redundant():
    # log_softmax is idempotent: CrossEntropyLoss on log-probabilities equals it on the logits.
    result = run_check(CHECK, classifier_ending_in(nn.LogSoftmax(dim=1)), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS
    assert any("redundant" in line for line in result.evidence)


def test_sigmoid_regression_with_targets_inside_its_range_passes():
    # A bounded output for bounded targets (fractions, pixel intensities) is a legitimate design.
    result = run_check(CHECK, regressor(nn.Sigmoid()), regression_targets(0.0, 1.0), nn.MSELoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["targets_outside_share"] == 0.0


def test_scaled_tanh_covering_the_targets_passes():
    result = run_check(CHECK, ScaledTanh(5.0), regression_targets(-5.0, 5.0), nn.MSELoss())
    assert result.status is Status.PASS, result.summary
    assert (result.metrics["bound_low"], result.metrics["bound_high"]) == (-5.0, 5.0)


def test_dict_output_with_logits_passes():
    result = run_check(CHECK, DictOutput(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


def test_sequence_output_reshaped_by_the_loss_is_judged_as_the_loss_sees_it():
    # (B, T, V) logits flattened to (B*T, V) inside the loss: V logits per token, not T.
    class TokenTagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.out = nn.Linear(16, 50)

        def forward(self, x):
            return self.out(self.embed(x))

    def token_loss(out, y):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    tokens = zoo.tokens().tensors[0]
    result = run_check(CHECK, TokenTagger(), TensorDataset(tokens, tokens), token_loss, task="classification")
    assert result.status is Status.PASS, result.summary
    assert result.metrics["output_width"] == 50


# ----------------------------------------------------------------------------------- broken


def test_softmax_module_before_cross_entropy_fails_naming_the_layer():
    result = run_check(CHECK, classifier_ending_in(nn.Softmax(dim=1)), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "probabilities fed to CrossEntropyLoss" in result.summary
    assert "1 (Softmax)" in result.summary and "rows sum to 1.000" in result.summary
    assert "Remove the final Softmax layer (1)" in result.fix
    assert result.metrics["confidence_cap"] < 0.5


def test_functional_softmax_in_forward_fails():
    result = run_check(CHECK, FunctionalHead(lambda z: F.softmax(z, dim=1)), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "F.softmax() in FunctionalHead.forward" in result.summary


def test_softmax_computed_by_hand_is_caught_by_its_numbers():
    def softmax_by_hand(z):
        e = z.exp()
        return e / e.sum(dim=1, keepdim=True)

    result = run_check(CHECK, FunctionalHead(softmax_by_hand), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "rows sum to 1.000" in result.summary


def test_softmax_with_hand_written_log_loss_fails():
    model = FunctionalHead(lambda z: F.softmax(z, dim=1))
    result = run_check(CHECK, model, zoo.blobs(), hand_written_log_loss)
    assert result.status is Status.FAIL
    assert "hand_written_log_loss() takes the log of probabilities" in result.summary
    assert "CrossEntropyLoss" in result.fix


def test_seed_000_deep_leaky_relu_network_with_softmax_output_fails():
    result = run_check(CHECK, deep_leaky_softmax(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "(Softmax)" in result.summary


@pytest.mark.parametrize(
    "model, named",
    [
        (classifier_ending_in(nn.ReLU()), "1 (ReLU)"),
        (FunctionalHead(torch.relu), "torch.relu() in FunctionalHead.forward"),
    ],
    ids=["relu_module", "torch_relu_in_forward"],
)
def test_relu_on_logits_fails(model, named):
    result = run_check(CHECK, model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert named in result.summary and "no gradient" in result.summary
    assert result.metrics["zero_share"] > 0.2


def test_seed_003_sigmoid_output_for_ten_classes_with_cross_entropy_fails():
    model = nn.Sequential(nn.Linear(20, 25), nn.Sigmoid(), nn.Linear(25, 10), nn.Sigmoid())
    result = run_check(CHECK, model, zoo.blobs(classes=10), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "3 (Sigmoid) into [0, 1]" in result.summary
    assert "at most 23% probability over 10 classes" in result.summary


def test_sigmoid_method_in_forward_fails():
    result = run_check(CHECK, FunctionalHead(lambda z: z.sigmoid()), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "Tensor.sigmoid() in FunctionalHead.forward" in result.summary


def test_tanh_logits_for_two_classes_fail():
    data = zoo.blobs(classes=2)
    result = run_check(CHECK, nn.Sequential(zoo.mlp(classes=2), nn.Tanh()), data, nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "at most 88%" in result.summary


def test_gelu_on_logits_warns():
    result = run_check(CHECK, classifier_ending_in(nn.GELU()), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN


def test_sigmoid_with_bce_loss_fails_and_advises_bce_with_logits():
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    result = run_check(CHECK, model, zoo.binary(), nn.BCELoss())
    assert result.status is Status.FAIL
    assert "3 (Sigmoid)" in result.summary
    assert "Use BCEWithLogitsLoss and drop the final Sigmoid layer (3)" in result.fix


def test_sigmoid_with_bce_with_logits_loss_fails_as_double_sigmoid():
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    result = run_check(CHECK, model, zoo.binary(), nn.BCEWithLogitsLoss())
    assert result.status is Status.FAIL
    assert "sigmoid again" in result.summary
    assert result.metrics["reachable_low"] == pytest.approx(0.5)


def test_softmax_with_nll_loss_fails():
    result = run_check(CHECK, classifier_ending_in(nn.Softmax(dim=1)), zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.FAIL
    assert "expects log-probabilities" in result.summary
    assert "log_softmax" in result.fix


def test_raw_logits_with_nll_loss_fail():
    result = run_check(CHECK, zoo.mlp(), zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.FAIL
    assert "not log-probabilities" in result.summary


def test_log_of_softmax_in_two_steps_fails():
    model = FunctionalHead(lambda z: torch.log(F.softmax(z, dim=1) + 1e-8))
    result = run_check(CHECK, model, zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.FAIL
    assert "two steps" in result.summary and "F.log_softmax" in result.fix


def test_tanh_bounded_regression_with_wider_targets_fails():
    result = run_check(CHECK, regressor(nn.Tanh()), regression_targets(-5.0, 5.0), nn.MSELoss())
    assert result.status is Status.FAIL
    assert "3 (Tanh) bounds the output to [-1, 1]" in result.summary
    assert result.metrics["targets_outside_share"] > 0.7
    assert "linear output" in result.fix


def test_relu_output_with_negative_regression_targets_fails():
    result = run_check(CHECK, regressor(nn.ReLU()), regression_targets(-3.0, 3.0), nn.MSELoss())
    assert result.status is Status.FAIL
    assert "[0, inf]" in result.summary


def test_scaled_tanh_too_narrow_for_the_targets_fails():
    result = run_check(CHECK, ScaledTanh(2.0), regression_targets(-5.0, 5.0), nn.MSELoss())
    assert result.status is Status.FAIL
    assert "[-2, 2]" in result.summary


def test_one_wide_output_with_cross_entropy_fails():
    result = run_check(CHECK, zoo.mlp(classes=1), zoo.blobs(classes=2), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "1-wide output" in result.summary and "always 0" in result.summary
    assert "Linear(…, 2)" in result.fix


def test_output_much_wider_than_a_complete_class_list_fails():
    # zoo: broken_output_width_mismatch (a 10-class head copied onto a 4-class problem)
    result = run_check(CHECK, zoo.mlp(classes=10), zoo.blobs(classes=4), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "output width 10 for labels 0..3: 6 logits belong to classes absent from all 512 samples" in result.summary
    assert "Linear(…, 4)" in result.fix


def test_a_logit_or_two_beyond_the_labels_passes():
    # e.g. a reserved "unknown" class: not a clear mismatch
    result = run_check(CHECK, zoo.mlp(classes=5), zoo.blobs(classes=4), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert "5 logits for labels 0..3" in result.summary


class ItemDataset(Dataset):
    """Items built in __getitem__, no stored target column: only a scan of it can be read."""

    def __init__(self, data: TensorDataset):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]


def test_much_wider_output_on_a_scan_of_a_larger_dataset_only_warns():
    # classes 4..9 may exist and be rarer than 1 in 2048 samples
    result = run_check(CHECK, zoo.mlp(classes=10), ItemDataset(zoo.blobs(n=3000, classes=4)), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "absent from a scan of 2048 of 3000 samples" in result.summary
    assert any("rarer classes may exist" in line for line in result.evidence)


def test_much_wider_output_for_labels_with_gaps_only_warns():
    # labels 0 and 3 only: ids from a larger set (a vocabulary, global class ids), not a class list
    inputs, labels = zoo.blobs(classes=2).tensors
    result = run_check(CHECK, zoo.mlp(classes=10), TensorDataset(inputs, labels * 3), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert any("skip some values" in line for line in result.evidence)


class NamedClasses(TensorDataset):
    """A torchvision-style dataset naming its classes."""

    classes = [f"class {i}" for i in range(10)]


def test_wider_output_covering_the_classes_the_dataset_declares_passes():
    # a subset holding 4 of the 10 classes a torchvision-style dataset names
    inputs, labels = zoo.blobs(classes=4).tensors
    subset = Subset(NamedClasses(inputs, labels), range(400))
    result = run_check(CHECK, zoo.mlp(classes=10), subset, nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert "10 logits for labels 0..3 (10 classes declared by the dataset)" in result.summary


def test_dict_output_with_softmax_fails():
    result = run_check(CHECK, DictOutput(lambda z: z.softmax(dim=1)), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "Tensor.softmax() in DictOutput.forward" in result.summary


def test_torchvision_resnet_with_softmax_in_its_head_fails():
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    model.fc = nn.Sequential(nn.Linear(512, 10), nn.Softmax(dim=1))
    result = run_check(CHECK, model, zoo.images(n=16, size=8), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "fc.1 (Softmax)" in result.summary


def test_no_torch_function_mode_is_left_behind_when_the_loss_raises():
    # Labels reach 3 but the head has 3 logits: the loss raises inside the probe's mode.
    result = run_check(CHECK, zoo.mlp(classes=3), zoo.blobs(classes=4), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "labels reach 3" in result.summary
    assert not torch._C._is_torch_function_mode_enabled()


def test_bound_margin_is_overridable():
    result = run_check(
        CHECK, regressor(nn.Tanh()), regression_targets(-5.0, 5.0), nn.MSELoss(), thresholds={"bound_margin": 1.0}
    )
    assert result.status is Status.PASS
