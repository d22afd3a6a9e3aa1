import pytest
import torch
import torchvision
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


def sgd(**settings):
    return lambda params: torch.optim.SGD(params, **settings)


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_with_adam_pass(case):
    result = run_case("update_ratio", case)
    assert result.status is Status.PASS, result.summary
    assert 1e-3 < result.metrics["median_ratio"] < 1e-1  # Adam's first step: about lr / rms(w)


def test_torchvision_resnet18_passes():
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    result = run_check("update_ratio", model, zoo.images(n=16, size=32), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["judged"] == 21  # convolutions and fc; batch-norm parameters are not judged


def test_tiny_learning_rate_fails_low():
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=1e-8))
    assert result.status is Status.FAIL
    assert "far too small" in result.summary
    assert result.metrics["median_ratio"] < 1e-6
    assert result.fix.startswith("Raise the learning rate") and "instead of 1e-08" in result.fix


def test_small_learning_rate_warns_low():
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=1e-3))
    assert result.status is Status.WARN
    assert 1e-6 < result.metrics["median_ratio"] < 1e-4


def test_momentum_is_taken_into_account():
    # the first momentum-SGD step equals plain SGD's, but later steps grow to 1 / (1 - 0.9) = 10x
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=1e-3, momentum=0.9))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["typical_ratio"] == pytest.approx(10 * result.metrics["median_ratio"])


def test_huge_learning_rate_fails_high():
    # on this MLP the first lr=10 step still lowers the loss; the second one blows it up to ~17
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=10.0))
    assert result.status is Status.FAIL
    assert result.metrics["median_ratio"] > 0.3
    assert result.fix.startswith("Lower the learning rate")


def test_large_learning_rate_warns_high():
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=3.0))
    assert result.status is Status.WARN
    assert 0.1 < result.metrics["median_ratio"] < 0.3


def test_huge_adam_learning_rate_fails_high():
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=lambda p: torch.optim.Adam(p, lr=1.0))
    assert result.status is Status.FAIL
    assert "far too large" in result.summary


def test_weight_decay_is_part_of_the_step():
    # SGD's decay alone moves every weight by lr * wd = 10x its size per step
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=0.1, weight_decay=100.0))
    assert result.status is Status.FAIL
    assert result.metrics["median_ratio"] > 1


def test_zero_initialized_weights_are_left_out_not_divided_by():
    model = zoo.mlp()
    with torch.no_grad():
        model[2].weight.zero_()
    result = run_check("update_ratio", model, zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["judged"] == 1  # 4.weight; 0.weight gets no gradient through the zero layer yet
    assert any("zero-initialized: 2.weight" in line for line in result.evidence)
    assert any("no gradient at this step: 1 weight tensors" in line for line in result.evidence)
    row = next(row for row in result.tables[0].rows if row[0] == "2.weight")
    assert row[-1] is None  # no ratio for a zero weight


def test_nothing_measurable_skips():
    model = zoo.mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    result = run_check("update_ratio", model, zoo.blobs())
    assert result.status is Status.SKIP


def test_nan_loss_skips():
    data = zoo.blobs()
    data.tensors[0][::2, 5] = float("nan")  # half the samples: whatever the batch, its loss is NaN
    result = run_check("update_ratio", zoo.mlp(), data)
    assert result.status is Status.SKIP
    assert "numerics" in result.summary


def test_evidence_names_the_extreme_layers():
    result = run_check("update_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=1e-8))
    assert result.evidence[0].startswith("smallest: ")
    assert result.evidence[1].startswith("largest: ")
    assert {"0.weight", "2.weight", "4.weight"} <= {row[0] for row in result.tables[0].rows}
    assert result.plots[0].name == "update_ratio"
