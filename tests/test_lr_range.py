import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nndoctor import catalog
from nndoctor.checks import lr_range
from nndoctor.context import Context
from nndoctor.loading import build_subject, import_model_file
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

ZOO_DATA = import_model_file(Path(__file__).resolve().parent.parent / "benchmarks" / "zoo" / "_zoo_common.py")


def sgd(lr, **settings):
    return lambda params: torch.optim.SGD(params, lr=lr, **settings)


def adam(lr):
    return lambda params: torch.optim.Adam(params, lr=lr)


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
@pytest.mark.parametrize("batch_flops", [2e9, 1.0], ids=["full_batch", "batch_of_16"])
def test_sound_models_with_default_adam_pass(case, batch_flops):
    # batch_of_16: the smallest batch a compute-heavy model sweeps gives the same verdict
    result = run_case("lr_range", case, thresholds={"batch_flops": batch_flops})
    assert result.status is Status.PASS, result.summary
    assert result.metrics["divergence_lr"] is None or result.metrics["suggested_lr"] < result.metrics["divergence_lr"]


def test_mlp_with_sgd_at_0_1_passes():
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(0.1))
    assert result.status is Status.PASS, result.summary
    assert "lr 0.1 is in the working range" in result.summary


@pytest.mark.parametrize("lr", [10.0, 50.0])
def test_sgd_far_past_divergence_fails(lr):
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(lr))
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["divergence_lr"] <= lr  # the sweep reaches past the configured rate
    assert "past the divergence point" in result.summary
    assert result.fix.startswith(f"Lower the learning rate from {lr:g} to about")


def test_rate_a_warmed_up_sweep_survives_but_a_cold_start_does_not_fails():
    # Plain SGD at 5 blows this MLP up from init (the same setup trained by mini-batches breaks from
    # lr 2-3), while the sweep, whose slowly rising rate warms the model up, diverges only above 5.
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(5.0))
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["divergence_lr"] > 5.0
    assert "diverges from init" in result.summary
    cold = result.metrics["cold_start_losses"]
    assert len(cold) == lr_range.COLD_STEPS + 1 and max(cold) > 10 * cold[0]


def plain_cnn():
    """No normalization: a large Adam step kills its ReLUs, and a dead network's loss stays at that
    of a constant prediction instead of blowing up."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def test_rate_at_which_the_sweep_undoes_its_progress_fails():
    # Trained on mini-batches for 40 epochs, this CNN stays at chance with Adam 0.1, and reaches 100%
    # held-out accuracy at the suggested 0.03. The sweep's loss never reaches 4x its best: after 0.07
    # it climbs back above its start and the ReLUs die.
    result = run_check("lr_range", plain_cnn(), ZOO_DATA.images(), nn.CrossEntropyLoss(), adam(0.1))
    assert result.status is Status.FAIL, result.summary
    assert "past the divergence point" in result.summary
    assert any("climbed back" in line and "above its start" in line for line in result.evidence)
    assert result.metrics["best_loss"] < 0.95 * result.metrics["initial_loss"]
    assert result.metrics["suggested_lr"] < result.metrics["divergence_lr"] <= 0.1


def test_default_adam_on_the_same_cnn_passes():
    result = run_check("lr_range", plain_cnn(), ZOO_DATA.images(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


def test_sweep_stops_once_no_higher_rate_can_change_the_verdict(monkeypatch):
    early = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss())
    assert early.metrics["steps"] < 50 and early.metrics["divergence_lr"] is None
    assert any(line.startswith("stopped at lr") for line in early.evidence)
    monkeypatch.setattr(lr_range, "_settled", lambda lrs, smoothed: False)
    full = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss())
    assert full.metrics["divergence_lr"] is not None and full.metrics["steps"] > early.metrics["steps"]
    assert (early.status, early.metrics["suggested_lr"]) == (full.status, full.metrics["suggested_lr"])


def test_rate_above_the_suggestion_a_decade_below_divergence_is_not_tried_from_init():
    case = zoo.sound_case("regression")
    result = run_check("lr_range", case.model, case.dataset, case.loss_fn, adam(0.03))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["suggested_lr"] < 0.03 and result.metrics["divergence_lr"] > lr_range.REACH * 0.03
    assert result.metrics["cold_start_losses"] is None


def test_tiny_sgd_rate_warns_far_below_the_suggestion():
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(1e-6))
    assert result.status is Status.WARN, result.summary
    assert "below the suggestion" in result.summary
    assert result.metrics["suggested_lr"] > 1e-6 * 1000
    assert result.fix.startswith("Raise the learning rate from 1e-06 to about")


def test_tiny_adam_rate_warns():
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), adam(1e-7))
    assert result.status is Status.WARN, result.summary


def test_the_range_follows_the_optimizer():
    with_adam = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), adam(1e-3))
    with_sgd = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(0.1))
    # Adam moves every weight by about lr per step, whatever the gradient's size: its rates are lower.
    assert with_adam.metrics["suggested_lr"] * 10 < with_sgd.metrics["suggested_lr"]
    assert with_adam.metrics["best_lr"] * 10 < with_sgd.metrics["best_lr"]


class InputIgnoringClassifier(nn.Module):
    """Sees only zeros: the best it can learn is the class prior, which balanced labels already give."""

    def __init__(self):
        super().__init__()
        self.body = zoo.mlp()

    def forward(self, x):
        return self.body(torch.zeros_like(x))


def test_model_that_learns_at_no_rate_warns_that_the_rate_is_not_the_cause():
    data = zoo.blobs()
    balanced = torch.utils.data.TensorDataset(data.tensors[0], torch.arange(len(data)) % 4)
    result = run_check("lr_range", InputIgnoringClassifier(), balanced, nn.CrossEntropyLoss())
    assert result.status is Status.WARN, result.summary
    assert "no learning rate" in result.summary and "lowered the loss" in result.summary
    assert result.metrics["suggested_lr"] is None
    assert "overfit_small_batch" in result.fix


def test_optimizer_without_a_rate_schedule_is_skipped():
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), lambda p: torch.optim.LBFGS(p))
    assert result.status is Status.SKIP
    assert "LBFGS" in result.summary


def test_parameter_groups_are_swept_together_and_the_first_one_judged():
    def grouped(params):
        first, *rest = list(params)
        return torch.optim.SGD([{"params": [first], "lr": 0.1}, {"params": rest, "lr": 0.01}])

    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), grouped)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["configured_lr"] == 0.1
    assert "2 parameter group(s)" in result.evidence[0]


def test_sweep_nans_are_not_recorded_as_numerics_events():
    case = zoo.sound_case("regression")
    subject = build_subject(Path("<test>"), case.model, case.dataset, case.loss_fn, make_optimizer=sgd(0.7), device="cpu")
    ctx = Context(subject)
    finding = lr_range.run(ctx, catalog.get_spec("lr_range").thresholds)
    assert finding.status is Status.FAIL
    # it did blow up, on purpose: NaN events travel with the runs that met them, and numerics reads
    # only the shared runs of the configured setup, so the sweep's provoked NaNs are not a fault
    assert not all(math.isfinite(v) for v in finding.metrics["cold_start_losses"])


def test_report_carries_a_log_x_plot_and_a_short_table():
    result = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), sgd(0.1))
    (plot,) = result.plots
    assert plot.name == "lr_range" and plot.log_x
    labels = [label for label, _, _ in plot.series]
    assert labels[0] == "smoothed loss" and any(label.startswith("configured lr") for label in labels)
    (table,) = result.tables
    assert table.columns == ("lr", "smoothed loss") and len(table.rows) == lr_range.TABLE_POINTS


def test_compute_heavy_models_sweep_a_smaller_batch():
    # The batch is bounded by forward FLOPs as well as input size: a model whose samples cost more
    # than batch_flops / 64 sweeps fewer of them (never under 16); small models keep the full batch.
    torch.manual_seed(0)
    small = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss())
    assert small.metrics["samples"] == 64
    heavy = run_check("lr_range", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds={"batch_flops": 1e5})
    assert heavy.metrics["samples"] == 16
    assert heavy.status is Status.PASS, heavy.summary
