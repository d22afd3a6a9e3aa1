from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor.context import Context
from nndoctor.loading import build_subject
from nndoctor.probes import step
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


class DetachedFeatures(nn.Module):
    """A .detach() after the feature extractor: only the head ever trains."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(self.features(x).detach())


class UnusedBranch(nn.Module):
    """A submodule defined in __init__ but never called in forward."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 64), nn.ReLU())
        self.skip = nn.Linear(20, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(self.body(x))


class RoundedHidden(nn.Module):
    """torch.round in forward: differentiable in name, all-zero gradient in fact."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(20, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(torch.round(self.encoder(x)))


def plain_stack(depth: int, act: type[nn.Module] = nn.Sigmoid) -> nn.Sequential:
    """``depth`` hidden layers of 64 units on the 20 blob features, then a 4-class head."""
    layers = [nn.Linear(20, 64), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(64, 64), act()]
    return nn.Sequential(*layers, nn.Linear(64, 4))


def scaled_stack(depth: int, act: type[nn.Module], gain: float) -> nn.Sequential:
    """A plain stack drawn at ``gain`` times He (ReLU) or Glorot (tanh) scale: every layer
    multiplies the signal by about ``gain``, forward and backward alike."""
    model = plain_stack(depth, act)
    variance = 2.0 if act is nn.ReLU else 1.0  # x 1/fan_in: He, or Glorot for the square hidden layers
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=gain * (variance / layer.in_features) ** 0.5)
            nn.init.zeros_(layer.bias)
    return model


def head_only_optimizer(params):
    return torch.optim.Adam(list(params)[-2:], lr=1e-3)  # the head's weight and bias only


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("gradient_flow", case)
    assert result.status is Status.PASS, result.summary


def test_torchvision_resnet18_passes():
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    result = run_check("gradient_flow", model, zoo.images(n=16, size=32), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["no_gradient"] == 0


def test_zero_initialized_head_and_branches_pass_with_late_gradients():
    # Fixup: a zero head passes no gradient back at the first step, zero branch ends none into
    # their branch; one step later every parameter has its gradient
    model = zoo.ResidualMLP(blocks=3)
    with torch.no_grad():
        for block in model.blocks:
            block[3].weight.zero_()
        model.out[1].weight.zero_()
    result = run_check("gradient_flow", model, zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["backward_passes"] == 3
    assert any("first gradient only at step 3" in line for line in result.evidence)


def test_detach_in_forward_fails_naming_the_cut_off_layers():
    result = run_check("gradient_flow", DetachedFeatures(), zoo.blobs())
    assert result.status is Status.FAIL
    assert "no gradient reaches features.0, features.2" in result.summary
    assert "detach" in result.fix


def test_unused_submodule_fails():
    result = run_check("gradient_flow", UnusedBranch(), zoo.blobs())
    assert result.status is Status.FAIL
    assert "not run in forward, so no gradient: skip (2 parameter tensors)" in result.summary
    assert result.metrics["no_gradient"] == 2


def test_non_differentiable_op_gives_zero_gradient_and_fails():
    result = run_check("gradient_flow", RoundedHidden(), zoo.blobs())
    assert result.status is Status.FAIL
    assert "the gradient of encoder is exactly zero" in result.summary


def test_all_zero_mlp_fails_with_zero_gradients_in_hidden_layers():
    model = zoo.mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    result = run_check("gradient_flow", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "the gradient of 0, 2" in result.summary


def test_one_dead_tensor_in_a_learning_module_warns():
    # a bidirectional LSTM read at the last step only: the reverse direction has seen one token
    # there, so the recurrent weights of its top layer never get a gradient
    class LastStepBiLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.rnn = nn.LSTM(16, 16, num_layers=2, bidirectional=True, batch_first=True)
            self.head = nn.Linear(32, 3)

        def forward(self, x):
            return self.head(self.rnn(self.embed(x))[0][:, -1])

    result = run_check("gradient_flow", LastStepBiLSTM(), zoo.tokens())
    assert result.status is Status.WARN
    assert "no gradient ever reaches rnn.weight_hh_l1_reverse, though the rest of rnn learns" in result.summary


def test_parameters_missing_from_the_optimizer_fail():
    result = run_check("gradient_flow", zoo.mlp(), zoo.blobs(), optimizer=head_only_optimizer)
    assert result.status is Status.FAIL
    assert "0, 2 are trainable but not in the optimizer (4 parameter tensors)" in result.summary
    assert result.metrics["not_in_optimizer"] == 4


def test_deep_sigmoid_stack_fails_with_vanishing_gradients():
    result = run_check("gradient_flow", plain_stack(depth=8), zoo.blobs())
    assert result.status is Status.FAIL
    assert "vanishing gradients" in result.summary
    assert result.metrics["depth_ratio"] < 1e-5


def test_moderately_deep_sigmoid_stack_warns():
    result = run_check("gradient_flow", plain_stack(depth=4), zoo.blobs())
    assert result.status is Status.WARN
    assert 1e-5 < result.metrics["depth_ratio"] < 1e-3


def test_intentionally_frozen_backbone_passes_and_is_reported():
    model = zoo.mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)
    result = run_check("gradient_flow", model, zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["frozen"] == 2
    assert any("frozen" in line and "0" in line for line in result.evidence)


def test_everything_frozen_warns():
    model = zoo.mlp().requires_grad_(False)
    result = run_check("gradient_flow", model, zoo.blobs())
    assert result.status is Status.WARN
    assert "all 6 parameter tensors are frozen" in result.summary


def test_nan_loss_fails_and_points_to_numerics():
    data = zoo.blobs()
    data.tensors[0][::2, 5] = float("nan")  # half the samples: whatever the batch, its loss is NaN
    result = run_check("gradient_flow", zoo.mlp(), data)
    assert result.status is Status.FAIL
    assert "the loss is nan" in result.summary
    assert "numerics" in result.evidence[0]


def test_table_and_plot_follow_forward_order():
    class ReversedRegistration(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(64, 4)  # registered first, runs last
            self.encoder = nn.Linear(20, 64)

        def forward(self, x):
            return self.head(torch.relu(self.encoder(x)))

    result = run_check("gradient_flow", ReversedRegistration(), zoo.blobs())
    assert [row[0] for row in result.tables[0].rows] == ["encoder.weight", "head.weight"]
    plot = result.plots[0]
    assert plot.name == "gradient_flow" and plot.log_y
    assert plot.series[0][1] == ("encoder", "head")


# A plain stack with the same gain per layer scales every weight gradient alike (activations grow
# as c^l, backpropagated gradients as c^(L-l)): the depth ratio stays near 1, the absolute scale
# is off by orders of magnitude. Zoo: broken_exploding_deep_relu, broken_vanishing_small_init_tanh.


def test_deep_relu_stack_at_2_5x_he_fails_with_exploding_gradients_in_every_layer():
    result = run_check("gradient_flow", scaled_stack(19, nn.ReLU, gain=2.5), zoo.blobs())
    assert result.status is Status.FAIL
    assert "exploding gradients in every layer" in result.summary
    assert 1e-3 < result.metrics["depth_ratio"] < 1e3  # invisible to the depth rule
    assert result.metrics["gradient_scale_min"] > 1e3
    assert "clip_grad_norm_" in result.fix


def test_deep_tanh_stack_at_0_3x_glorot_fails_with_vanishing_gradients_in_every_layer():
    result = run_check("gradient_flow", scaled_stack(19, nn.Tanh, gain=0.3), zoo.blobs())
    assert result.status is Status.FAIL
    assert "vanishing gradients in every layer" in result.summary
    assert 1e-3 < result.metrics["depth_ratio"] < 1e3
    assert result.metrics["gradient_scale_max"] < 1e-5
    assert "xavier_normal_" in result.fix


def test_moderately_deep_relu_stack_at_2_5x_he_warns():
    result = run_check("gradient_flow", scaled_stack(11, nn.ReLU, gain=2.5), zoo.blobs())
    assert result.status is Status.WARN
    assert "exploding gradients in every layer" in result.summary


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh], ids=["relu", "tanh"])
def test_the_same_stacks_at_he_and_glorot_scale_pass(act):
    result = run_check("gradient_flow", scaled_stack(19, act, gain=1.0), zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert 1e-2 < result.metrics["gradient_scale_min"] < result.metrics["gradient_scale_max"] < 10


def test_the_loss_scale_is_divided_out():
    # targets in the tens of thousands and a summed loss make every raw gradient ~1e6x larger;
    # per unit loss gradient at the output the network is the same
    def regressor():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    inputs, targets = zoo.regression().tensors
    plain = run_check("gradient_flow", regressor(), TensorDataset(inputs, targets), nn.MSELoss())
    huge_targets = TensorDataset(inputs, 1e4 * targets + 5e4)
    huge = run_check("gradient_flow", regressor(), huge_targets, nn.MSELoss(reduction="sum"))
    assert huge.status is Status.PASS, huge.summary
    assert huge.metrics["output_gradient"] > 1e6 * plain.metrics["output_gradient"]
    for key in ("gradient_scale_min", "gradient_scale_max"):
        assert 0.1 < huge.metrics[key] / plain.metrics[key] < 10


class LayerScaleMLP(nn.Module):
    """CaiT-style residual branches multiplied by a learned per-channel scale (timm's LayerScale)
    that starts at 1e-6: most weight matrices get tiny gradients at init, by design."""

    def __init__(self, width: int = 64, blocks: int = 6):
        super().__init__()
        self.stem = nn.Linear(20, width)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
            for _ in range(blocks)
        )
        self.gammas = nn.ParameterList(nn.Parameter(torch.full((width,), 1e-6)) for _ in range(blocks))
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        h = self.stem(x)
        for branch, gamma in zip(self.branches, self.gammas):
            h = h + gamma * branch(h)
        return self.head(h)


def test_layer_scale_branches_with_tiny_gradients_by_design_pass():
    result = run_check("gradient_flow", LayerScaleMLP(), zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["gradient_scale_min"] < 1e-6  # the branch weights, as designed


class PerChannelScales(nn.Module):
    """A residual MLP with LayerScale (CaiT): per-channel branch scales, 1e-5 at init, kept as
    (1, width) tensors on the root module. Vectors, not weight matrices, though they have two
    dimensions: their relative gradient is huge because they are tiny, which says nothing about
    gradient flow across depth."""

    def __init__(self, width=32, depth=4):
        super().__init__()
        self.stem = nn.Linear(20, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.scales = nn.ParameterList(nn.Parameter(torch.full((1, width), 1e-5)) for _ in range(depth))
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        x = self.stem(x)
        for layer, scale in zip(self.layers, self.scales):
            x = x + scale * torch.relu(layer(x))
        return self.head(x)


def test_row_vector_scales_are_not_weight_matrices():
    result = run_check("gradient_flow", PerChannelScales(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


def test_compute_heavy_models_take_their_gradient_step_on_fewer_samples(monkeypatch):
    # The shared step's batch is bounded by forward FLOPs as well as input size (its activations
    # grow with compute); never under 32 samples. Same verdict on the smaller batch.
    def batch_size(flops):
        monkeypatch.setattr(step, "STEP_FLOPS", flops)
        return step.step_batch_size(Context(build_subject(Path("<test>"), zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu")))

    assert batch_size(step.STEP_FLOPS) == 256
    assert batch_size(1e3) == 32
    torch.manual_seed(0)  # the 32-sample step (STEP_FLOPS stays patched)
    result = run_check("gradient_flow", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


def test_attention_queries_and_keys_small_by_design_are_not_vanishing_gradients():
    # A fresh BERT's attention is near uniform, so its query and key matrices get ~1e-2 of the
    # relative gradient of the values beside them, in every layer: the typical early/late ratio
    # reads as vanishing, the best-fed early matrix does not.
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32, num_labels=3,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    ids = torch.randint(1, 50, (128, 16))
    data = [{"input_ids": i, "attention_mask": torch.ones_like(i), "labels": i[0] % 3} for i in ids]
    result = run_check("gradient_flow", model, data)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["depth_ratio"] < 1e-3 < result.metrics["depth_ratio_highest"]
