import pytest
import torch
import torchvision
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

SOUND = (Status.PASS, Status.SKIP)


def mlp_with_bias(bias: float, dead_units: int = 64, activation=nn.ReLU) -> nn.Sequential:
    """A 20-64-64-4 MLP whose second layer has ``dead_units`` biases set to ``bias``."""
    model = nn.Sequential(nn.Linear(20, 64), activation(), nn.Linear(64, 64), activation(), nn.Linear(64, 4))
    with torch.no_grad():
        model[2].bias[:dead_units] = bias
    return model


class ShiftedBlock(nn.Module):
    """A functional ReLU after a layer whose bias pushes every pre-activation below zero."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 32)
        nn.init.constant_(self.fc.bias, -5.0)

    def forward(self, x):
        return torch.relu(self.fc(x))


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = ShiftedBlock()
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.block(x))


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("dead_relu", case)
    assert result.status in SOUND, result.summary


def test_resnet18_passes():
    model = torchvision.models.resnet18(num_classes=10)
    result = run_check("dead_relu", model, zoo.images(n=32, size=32), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["layers"] == 17  # every call of the shared block ReLUs, counted once each


def test_negative_bias_kills_the_layer():
    result = run_check("dead_relu", mlp_with_bias(-10.0), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["worst_layer"] == "3"
    assert "3 has 64/64 units (100%) never active" in result.summary
    assert "bias" in result.fix
    assert result.tables[0].rows[1][:4] == ("3", "relu", 64, 64)


def test_functional_relu_is_found_and_named():
    result = run_check("dead_relu", FunctionalNet(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "block:relu#1" in result.summary
    assert result.evidence[0].startswith("block:relu#1: 32/32 units never active")


def test_dead_conv_channels_fail():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    nn.init.constant_(model[0].bias, -20.0)
    result = run_check("dead_relu", model, zoo.images(n=64), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["units"] == 8  # a unit is a channel


def test_most_of_a_layer_dead_warns():
    result = run_check("dead_relu", mlp_with_bias(-10.0, dead_units=40), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert result.metrics["max_dead_fraction"] == pytest.approx(40 / 64)


def test_leaky_relu_cannot_die_and_is_skipped():
    result = run_check("dead_relu", mlp_with_bias(-10.0, activation=nn.LeakyReLU), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.SKIP
    assert "leaky_relu" in result.summary


def test_plot_has_one_bar_per_relu_layer():
    result = run_check("dead_relu", mlp_with_bias(-10.0), zoo.blobs(), nn.CrossEntropyLoss())
    plot = result.plots[0]
    assert plot.name == "dead_relu" and plot.kind == "bar"
    assert plot.series[0][1:] == (("1", "3"), (0.0, 1.0))

