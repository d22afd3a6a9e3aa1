import pytest
import torch
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_start_at_chance(case):
    result = run_case("initial_loss", case)
    assert result.status is Status.PASS, result.summary


def test_classifier_with_huge_final_layer_fails():
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    result = run_check("initial_loss", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["ratio"] > 2
    assert "ln(4)" in result.summary


def test_nll_loss_on_probabilities_fails_as_negative():
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    result = run_check("initial_loss", model, zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.FAIL
    assert "negative" in result.summary


def test_regression_with_outputs_far_larger_than_targets_fails():
    data = zoo.regression()
    small = torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1] * 0.01)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
    with torch.no_grad():
        model[-1].weight.mul_(20)
    result = run_check("initial_loss", model, small, nn.MSELoss())
    assert result.status is Status.FAIL


def test_thresholds_are_overridable():
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    result = run_check("initial_loss", model, zoo.blobs(), nn.CrossEntropyLoss(), thresholds={"fail_ratio": 1e9, "warn_ratio": 1e9})
    assert result.status is Status.PASS
