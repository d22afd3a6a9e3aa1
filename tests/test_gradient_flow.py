import pytest
import torch
import torchvision
from torch import nn

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


def sigmoid_stack(depth: int) -> nn.Sequential:
    layers = [nn.Linear(20, 64), nn.Sigmoid()]
    for _ in range(depth - 1):
        layers += [nn.Linear(64, 64), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(64, 4))


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
    result = run_check("gradient_flow", sigmoid_stack(depth=8), zoo.blobs())
    assert result.status is Status.FAIL
    assert "vanishing gradients" in result.summary
    assert result.metrics["depth_ratio"] < 1e-5


def test_moderately_deep_sigmoid_stack_warns():
    result = run_check("gradient_flow", sigmoid_stack(depth=4), zoo.blobs())
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
