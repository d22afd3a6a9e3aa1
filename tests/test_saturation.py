import pytest
import torch
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

SOUND = (Status.PASS, Status.SKIP)


def stack(activation, depth: int, std: float | None = None, width: int = 64) -> nn.Sequential:
    """depth Linear+activation layers and a head; weights N(0, std), or Glorot when std is None."""
    layers, fan_in = [], 20
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        if std is None:
            nn.init.xavier_normal_(linear.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(linear.bias)
        else:
            nn.init.normal_(linear.weight, 0.0, std)
        layers += [linear, activation()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(width, 4))


class ScaledTanh(nn.Module):
    """A functional tanh on a pre-activation scaled up in forward."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(torch.tanh(20.0 * self.fc(x)))


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("saturation", case)
    assert result.status in SOUND, result.summary


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid])
def test_glorot_initialized_stacks_pass(activation):
    result = run_check("saturation", stack(activation, depth=6), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["saturated_units"] == 0


def test_deep_sigmoid_stack_with_unit_normal_init_fails():
    result = run_check("saturation", stack(nn.Sigmoid, depth=10, std=1.0), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["problem_layers"] >= 8
    assert "sigmoid" in result.summary


def test_tanh_with_oversized_init_fails():
    result = run_check("saturation", stack(nn.Tanh, depth=3, std=3.0), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["max_saturated_fraction"] > 0.9
    assert "1 (tanh) has" in result.summary
    assert "xavier_normal_" in result.fix


def test_functional_tanh_is_found_and_named():
    result = run_check("saturation", ScaledTanh(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "ScaledTanh:tanh#1" in result.summary


def test_partly_saturated_layer_warns():
    model = stack(nn.Tanh, depth=2)
    with torch.no_grad():
        model[2].bias[:20] = 10.0  # 20 of 64 units pinned near +1
    result = run_check("saturation", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert result.metrics["saturated_units"] == 20


def test_output_sigmoid_is_left_to_the_head_checks():
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1), nn.Sigmoid())
    with torch.no_grad():
        model[2].weight.mul_(100)  # a saturated output, which initial_loss and output_head judge
    result = run_check("saturation", model, zoo.binary(), nn.BCELoss())
    assert result.status is Status.PASS
    assert result.metrics["layers"] == 1
    assert any("not judged: the output activation 3" in line for line in result.evidence)


def test_recurrent_gates_are_not_visible():
    result = run_case("saturation", zoo.sound_case("gru_tokens"))
    assert result.status is Status.SKIP
    assert "rnn" in result.summary


def test_limits_are_overridable():
    model = stack(nn.Tanh, depth=3, std=3.0)
    default = run_check("saturation", model, zoo.blobs(), nn.CrossEntropyLoss())
    strict = run_check("saturation", model, zoo.blobs(), nn.CrossEntropyLoss(), thresholds={"tanh_limit": 0.9999999})
    assert strict.metrics["saturated_units"] < default.metrics["saturated_units"]
