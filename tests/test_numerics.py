import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor import api, training
from nndoctor.context import Context
from nndoctor.loading import build_subject
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_stay_finite(case):
    result = run_case("numerics", case)
    assert result.status is Status.PASS, result.summary
    assert len(result.metrics["runs"]) == 3


def test_reads_the_same_runs_whichever_checks_were_selected():
    alone = api.check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), only=["numerics"], device="cpu").result("numerics")
    together = api.check(
        zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), only=["prediction_collapse", "overfit_small_batch", "numerics"], device="cpu",
    ).result("numerics")
    assert alone.status is together.status is Status.PASS
    assert alone.metrics["runs"] == together.metrics["runs"]
    assert "short training run" in alone.metrics["runs"]


def softmax_then_log_loss(output, target):
    """Cross-entropy written by hand: log(softmax) hits log(0) = -inf once a probability underflows."""
    one_hot = nn.functional.one_hot(target, output.shape[1]).float()
    return -(one_hot * torch.log(torch.softmax(output, dim=1))).sum(1).mean()


def test_hand_written_log_of_softmax_fails_naming_the_loss():
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(1000)  # logits in the thousands: softmax underflows to exact zeros
    result = run_check("numerics", model, zoo.blobs(), softmax_then_log_loss, task="classification")
    assert result.status is Status.FAIL
    assert result.metrics["first_where"] == "loss" and result.metrics["first_op"] == "log"
    assert "the loss (log)" in result.summary
    assert "log_softmax" in result.fix


class LogFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 32)
        self.act = nn.ReLU()
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(torch.log(self.act(self.fc(x))))  # log(0) wherever the ReLU is off


class Classifier(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)


def test_log_of_relu_output_fails_naming_the_module():
    result = run_check("numerics", Classifier(LogFeatures()), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["first_where"] == "block"
    assert result.metrics["first_kind"] == "output" and result.metrics["first_op"] == "log"
    assert result.metrics["first_step"] == 0


class InPlaceLog(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 32)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.act(self.fc(x))
        h.log_()
        return self.head(h)


def test_in_place_log_is_found_where_it_happens():
    result = run_check("numerics", InPlaceLog(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert (result.metrics["first_where"], result.metrics["first_op"]) == ("InPlaceLog", "log")


class SqrtCounts(nn.Module):
    """sqrt of non-negative count features after a learnable scale: finite forward, but sqrt'(0)
    is infinite, so every count of 0 sends a NaN into the scale's gradient."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(20))
        self.net = zoo.mlp()

    def forward(self, x):
        return self.net(torch.sqrt(x * self.scale))


def count_data() -> TensorDataset:
    x, y = zoo.blobs().tensors
    return TensorDataset(x.clamp(min=0).round(), y)


def test_sqrt_at_zero_fails_with_a_gradient_event_behind_a_finite_loss():
    subject = build_subject(Path("<test>"), SqrtCounts(), count_data(), loss=nn.CrossEntropyLoss(), device="cpu")
    inputs, targets = Context(subject).batch(64)
    model = subject.fresh_model()
    with torch.no_grad():
        assert math.isfinite(float(subject.compute_loss(subject.predict(model, inputs), targets)))
    result = run_check("numerics", SqrtCounts(), count_data(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["first_kind"] == "gradient"
    assert (result.metrics["first_where"], result.metrics["first_op"], result.metrics["first_step"]) == ("SqrtCounts", "sqrt", 0)
    assert "sqrt(x + 1e-8)" in result.fix


def test_nan_in_the_data_fails_naming_the_input():
    x, y = zoo.blobs().tensors
    x = x.clone()
    x[::7, 3] = float("nan")
    result = run_check("numerics", zoo.mlp(), TensorDataset(x, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["first_where"] == "input"
    assert "the input data" in result.summary


def test_learning_rate_far_too_high_fails_at_a_later_step():
    result = run_check("numerics", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), lambda p: torch.optim.SGD(p, lr=1e8))
    assert result.status is Status.FAIL
    assert result.metrics["first_step"] > 0
    assert "learning rate" in result.fix


def test_events_are_reported_with_the_run_that_met_them():
    report = api.check(LogFeatures(), zoo.blobs(), nn.CrossEntropyLoss(), only=["numerics"], device="cpu")
    result = report.result("numerics")
    assert result.status is Status.FAIL
    assert result.codes and result.codes[0].startswith("numerics.nonfinite_")
    assert {row[0] for row in result.tables[0].rows} <= {"gradient step", "overfit_small_batch training", "short training run"}


class CausalEncoder(nn.Module):
    """A causal mask full of -inf (on purpose) in front of a sqrt of exact zeros (a bug)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        length = x.shape[1]
        causal = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
        h = self.encoder(self.embed(x), mask=causal)[:, -1]
        return self.head(torch.sqrt(h - h))


def test_locating_skips_infinities_written_on_purpose():
    subject = build_subject(Path("<test>"), CausalEncoder(), zoo.tokens(), loss=nn.CrossEntropyLoss(), device="cpu")
    ctx = Context(subject)
    inputs, targets = ctx.batch(32)
    model = subject.fresh_model()
    origin = training.locate_nonfinite(ctx, model, inputs, targets)
    assert origin == training.Origin("CausalEncoder", "gradient", "sqrt")
    assert all(p.grad is None for p in model.parameters())  # the replay ran on a copy


def test_a_finite_pass_has_no_origin():
    case = zoo.sound_case("transformer_tokens")
    subject = build_subject(Path("<test>"), case.model, case.dataset, loss=case.loss_fn, device="cpu")
    ctx = Context(subject)
    inputs, targets = ctx.batch(32)
    assert training.locate_nonfinite(ctx, subject.fresh_model(), inputs, targets) is None


def test_labels_the_loss_rejects_skip_rather_than_crash():
    x, y = zoo.blobs().tensors
    result = run_check("numerics", zoo.mlp(), TensorDataset(x, y + 1), nn.CrossEntropyLoss())  # label 4 of 4 classes
    assert result.status is Status.SKIP
    assert "data_integrity" in result.summary
