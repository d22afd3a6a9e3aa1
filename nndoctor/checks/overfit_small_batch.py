"""overfit_small_batch: can the model memorize 50 samples with regularization off? (seed 002:
"Prepare a tiny dataset of 50 or so records, turn off regularization ... and make sure loss
converges to zero ... If it doesn't then you know your problem lies deep"; Karpathy "overfit one
batch").

The shared overfit probe trains a copy of the model full-batch with the user's loss and
optimizer (dropout off, weight decay 0) until the loss is near its floor and (classification)
the predictions match the labels, or the step budget runs out. A miss is a failure named by how
the curve failed (nndoctor.curves); a run that was still falling steadily when the budget ran out
is slow, not broken, and only warned about.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor import run_description
from nndoctor.context import Context
from nndoctor.curves import Pattern, Reading, accuracy_fell, never_beat, unbounded_below
from nndoctor.probes.overfit import OverfitRun, OverfitSettings, small_batch_run
from nndoctor.result import Finding, Status

SAME_OUTPUT = 1e-5  # outputs varying less than this (relative) across samples are identical
STILL_WEIGHTS = 1e-3  # weights moving less than 0.1% of their size over the whole run did not train
STALL_PROGRESS = 0.3  # a plateau after removing this share of the excess loss is a stall, not inaction

CONSTANT_FIX = (
    "The model's outputs do not depend on its inputs. Check that forward() uses its input, that the "
    "weights are not all zero or identical (symmetry is never broken: weight_init), that the ReLUs are not "
    "all dead (dead_relu) and that gradients reach the early layers (gradient_flow)."
)
STALL_FIX = (
    "Learning stopped well above zero loss, so something caps what the model can fit: an activation on "
    "the outputs (Softmax/Sigmoid/ReLU/Tanh before a loss that expects logits: see output_head), units "
    "that died or saturated during training (dead_relu, saturation), or contradictory targets (identical "
    "inputs with different labels)."
)
STILL_FIX = (
    "The weights hardly move: raise the learning rate (10x at a time; update_ratio shows the step size "
    "against the weights) and check that the gradients are not vanishing or cut off (gradient_flow: "
    "detach(), no_grad(), requires_grad=False, parameters missing from the optimizer)."
)
FLOOR_FIX = (
    "Every prediction is right but the loss cannot go lower: something caps it. Most often the model "
    "emits probabilities or squashed values (Softmax/Sigmoid/ReLU/Tanh) into a loss that expects logits: "
    "emit raw logits (see output_head). If the cap is intended (hand-made label smoothing), raise loss_ratio."
)


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    settings = OverfitSettings.for_subject(ctx, thresholds)
    result = ctx.shared(small_batch_run, settings)
    metrics = run_description.metrics(result)
    evidence = (
        run_description.trace_line(result), run_description.goal_line(result),
        *run_description.accuracy_lines(result), f"trained on {_samples(result, ctx)}",
    )
    plots = (run_description.loss_plot(
        result, "overfit_loss", f"Overfitting {result.settings.samples} samples (regularization off)", "training loss",
    ),)
    if result.reached:
        return Finding(Status.PASS, _success(result), metrics, evidence, plots=plots)
    reading = result.reading
    cause_lines, fix = _cause(result, reading, ctx)
    status = Status.WARN if reading.pattern is Pattern.STILL_FALLING else Status.FAIL
    summary = SUMMARIES[reading.pattern](result, reading)
    return Finding(status, summary, metrics, (*cause_lines, *evidence), fix=fix, plots=plots, codes=(reading.pattern.value,))


def _success(result: OverfitRun) -> str:
    curve, goal = result.curve, result.goal
    text = f"reached loss {curve.final:.3g} ({_share(curve.final, curve.initial)} of initial {curve.initial:.3g})"
    if curve.accuracies:
        text += f" and accuracy {curve.accuracies[-1]:.2f}"
    return f"{text} in {curve.steps} steps (goal: loss <= {goal.loss:.3g})"


def _exploding(result: OverfitRun, r: Reading) -> str:
    if r.nonfinite_step is not None:
        return f"the loss exploded: {result.curve.losses[r.nonfinite_step]} at step {r.nonfinite_step} (from {r.initial:.3g})"
    return (
        f"the loss exploded: up to {r.peak:.3g} from {r.initial:.3g}, "
        f"ending at {result.curve.final:.3g} after {r.steps} steps"
    )


def _rising(result: OverfitRun, r: Reading) -> str:
    curve = result.curve
    if unbounded_below(r.initial, r.best, result.goal.floor, result.settings.explode_factor):
        return (
            f"the loss fell without bound ({r.initial:.3g} -> {r.best:.3g} in {r.steps} steps): a loss that is "
            "bounded below cannot, so it rewards something other than fitting the targets"
        )
    if accuracy_fell(curve.accuracies, r.initial, r.level):
        return (
            f"the loss fell ({r.initial:.3g} -> {curve.final:.3g}) while accuracy fell "
            f"({curve.accuracies[0]:.2f} -> {curve.accuracies[-1]:.2f}): training makes predictions worse"
        )
    ending = f", then turned non-finite at step {r.nonfinite_step}" if r.nonfinite_step is not None else f" in {r.steps} steps"
    return f"the loss rose from {r.initial:.3g} to {r.peak:.3g}{ending}"


def _oscillating(result: OverfitRun, r: Reading) -> str:
    return f"the loss oscillated (swings of ~{r.jitter:.0%}) around {r.level:.3g} without settling over {r.steps} steps"


def _still_falling(result: OverfitRun, r: Reading) -> str:
    more = f"; at its current rate it needs ~{r.steps_to_target:.0f} more steps" if r.steps_to_target else ""
    return (
        f"still falling when the {r.steps}-step budget ran out: loss {result.curve.final:.3g} "
        f"({_share(result.curve.final, r.initial)} of initial), goal {result.goal.loss:.3g}{more}"
    )


def _drop_then_flat(result: OverfitRun, r: Reading) -> str:
    return (
        f"the loss dropped steeply from {r.initial:.3g} within {result.settings.steep_window} steps, "
        f"then stayed flat at {r.level:.3g} (goal {result.goal.loss:.3g}) for {r.steps} steps"
    )


def _plateau(result: OverfitRun, r: Reading) -> str:
    return f"the loss plateaued at {r.level:.3g} (initial {r.initial:.3g}, goal {result.goal.loss:.3g}) over {r.steps} steps"


SUMMARIES = {
    Pattern.EXPLODING: _exploding,
    Pattern.RISING: _rising,
    Pattern.OSCILLATING: _oscillating,
    Pattern.STILL_FALLING: _still_falling,
    Pattern.DROP_THEN_FLAT: _drop_then_flat,
    Pattern.PLATEAU: _plateau,
}


def _cause(result: OverfitRun, r: Reading, ctx: Context) -> tuple[tuple[str, ...], str]:
    """Evidence lines about why, and the fix: the pattern's, refined for a plateau by what the
    run measured (identical outputs, weights that never moved, a loss floor)."""
    lines = [f"pattern: {r.pattern.label}"]
    change = result.curve.first_step_change
    if change is not None and change > 0:
        lines.append(
            f"the optimizer's first step climbed the loss (predicted change +{change:.3g}; "
            "any optimizer that minimizes makes it negative)"
        )
    lines.extend(run_description.nonfinite_lines(result))
    if result.random_forward:
        lines.append(
            "the same weights gave two different losses: the forward pass is random even with dropout modules "
            "off (functional dropout or noise layers?), so the loss cannot settle"
        )
    same_output = result.output_spread is not None and result.output_spread <= SAME_OUTPUT
    if same_output:
        lines.append(
            f"after training every sample gets the same output (relative spread {result.output_spread:.1e}): "
            "the outputs do not depend on the inputs"
        )
    if r.pattern is not Pattern.PLATEAU:
        return tuple(lines), run_description.FIXES[r.pattern]
    if same_output:
        return tuple(lines), CONSTANT_FIX
    line, fix = _plateau_cause(result, r)
    return (*lines, *((line,) if line else ())), fix


def _plateau_cause(result: OverfitRun, r: Reading) -> tuple[str | None, str]:
    """What kept a flat curve flat: weights that never moved, a cap on the loss, nothing learned
    beyond the constant, or a stall after real progress."""
    curve, goal = result.curve, result.goal
    if result.weight_change is not None and result.weight_change < STILL_WEIGHTS:
        return (
            f"the weights moved by {result.weight_change:.1e} of their size in {curve.steps} steps: "
            "the updates are negligible",
            STILL_FIX,
        )
    if _all_right(result):
        return (
            f"accuracy reached {curve.accuracies[-1]:.2f} yet the loss flattened at {r.level:.3g}, "
            f"{_share(r.level - goal.floor, curve.initial - goal.floor)} of the way from the floor "
            f"({goal.floor:.3g}) to the initial loss",
            FLOOR_FIX,
        )
    if goal.baseline is not None and never_beat(r.best, goal.baseline, goal.floor):
        return (
            f"the loss never went below {goal.baseline:.3g}, the loss of the best constant prediction "
            "(class prior / target mean): nothing was learned from the inputs",
            run_description.FIXES[r.pattern],
        )
    if r.progress >= STALL_PROGRESS:
        return (
            f"the loss fell by {r.progress:.0%} of the way to the floor, then stopped: some samples cannot be fit",
            STALL_FIX,
        )
    return None, run_description.FIXES[r.pattern]


def _all_right(result: OverfitRun) -> bool:
    acc = result.curve.accuracies
    return bool(acc) and result.goal.min_accuracy is not None and acc[-1] >= result.goal.min_accuracy


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole > 0 and part >= 0 else "n/a"


def _samples(result: OverfitRun, ctx: Context) -> str:
    return (
        f"{min(result.settings.samples, ctx.dataset_size)} samples, full batch, dropout off, weight decay 0, "
        f"optimizer {ctx.subject.optimizer_source}"
    )


