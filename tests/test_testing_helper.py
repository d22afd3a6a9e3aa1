"""nndoctor.testing.assert_trainable: the checklist as an assertion in a project's own tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nndoctor.result import Report, Status
from nndoctor.testing import assert_trainable
from tests import zoo

FAST = ["initial_loss", "output_head", "gradient_flow", "update_ratio"]


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_are_trainable(case):
    report = assert_trainable(case.model, case.dataset, case.loss_fn, case.optimizer, task=case.task, device="cpu", only=FAST)
    assert isinstance(report, Report) and report.passed


def confident_mlp() -> nn.Module:
    """Final layer 50x too large: confidently wrong at init."""
    torch.manual_seed(0)
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    return model


def test_a_failing_check_raises_with_its_id_summary_and_fix():
    with pytest.raises(AssertionError) as raised:
        assert_trainable(confident_mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=FAST)
    message = str(raised.value)
    lines = message.splitlines()
    assert lines[0].startswith("nndoctor: 1 check(s) failed the model (")
    assert lines[1].startswith("  FAIL initial_loss: initial loss ") and "expected ln(4) = 1.39" in lines[1]
    assert lines[2].startswith("      fix: ")


def test_softmax_into_cross_entropy_is_named_with_its_layer():
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    with pytest.raises(AssertionError, match=r"FAIL output_head: .*\n      fix: .*"):
        assert_trainable(model, zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=["output_head"])


def test_warnings_fail_only_when_asked():
    """Label leakage (the inputs are the one-hot labels): initial_loss warns."""
    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4) * 10)
        model.bias.zero_()
    labels = torch.arange(64) % 4
    data = torch.utils.data.TensorDataset(nn.functional.one_hot(labels, 4).float(), labels)
    report = assert_trainable(model, data, nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"])
    assert report.result("initial_loss").status is Status.WARN
    with pytest.raises(AssertionError, match=r"fail_on=warn\)\n  WARN initial_loss: .*suspiciously low"):
        assert_trainable(model, data, nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"], fail_on="warn")
