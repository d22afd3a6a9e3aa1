"""One description of a short training run (the overfit procedure), shared by every check that
makes one (overfit_small_batch on the real samples, easy_data on easy ones): the goal, the curve's
pattern and the fix it points at, the first NaN/Inf, the metrics and the plot read the same
wherever the run appears.
"""

from __future__ import annotations

import math
from typing import Any

from nndoctor.curves import Pattern, sample_points
from nndoctor.probes.overfit import OverfitRun
from nndoctor.result import PlotData

FIXES = {
    Pattern.EXPLODING: (
        "Lower the learning rate 10x at a time until the loss falls smoothly; clip gradients "
        "(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)); use fused losses "
        "(CrossEntropyLoss on logits, BCEWithLogitsLoss) instead of log(softmax) or log(sigmoid) by hand. "
        "The numerics check names the module where NaN/Inf first appeared."
    ),
    Pattern.RISING: (
        "Training is climbing the loss: look for a sign error. The loss must be minimized (no "
        "`-criterion(...)`, no maximize=True, a positive learning rate, `p -= lr * grad` in a "
        "hand-written update) and must measure error, not agreement (e.g. not a similarity or accuracy)."
    ),
    Pattern.OSCILLATING: (
        "Lower the learning rate 3-10x (or add warm-up). If the loss still jumps at a small learning rate, "
        "look for contradictory labels (identical inputs with different targets, targets misaligned with inputs) "
        "and for randomness in forward() that stays on in training (F.dropout, added noise)."
    ),
    Pattern.PLATEAU: (
        "Nothing is being learned. Raise the learning rate 10x; check that every layer gets gradients "
        "(gradient_flow: no detach()/no_grad(), parameters in the optimizer), that the weights are not "
        "zero or identical (weight_init), that ReLUs are alive (dead_relu), and that the inputs actually "
        "reach the model and the targets line up with them (input_dependence, data_integrity)."
    ),
    Pattern.DROP_THEN_FLAT: (
        "The initialization is inadequate (seed 002, 'Steep loss reduction'): use the default / He "
        "initialization for ReLU layers and Glorot for tanh/sigmoid, a small final layer, and check for "
        "units killed by the first large steps (dead_relu, saturation); a lower learning rate helps with the latter."
    ),
    Pattern.STILL_FALLING: (
        "The model learns, slowly: raise the learning rate (3x at a time, watching for instability) or give "
        "the run more steps (threshold max_steps). Plain SGD without momentum is often this slow: use momentum "
        "0.9 or Adam."
    ),
}


def goal_line(result: OverfitRun) -> str:
    goal = result.goal
    reference = (
        f"{1 - result.settings.loss_ratio:.0%} of the way from the best constant prediction's {goal.baseline:.3g} "
        f"to the floor {goal.floor:.3g}"
        if goal.baseline is not None and goal.baseline > goal.floor
        else "relative to the initial loss: this loss has no usable constant baseline"
    )
    text = f"goal: loss <= {goal.loss:.3g} ({reference})"
    if goal.min_accuracy is not None:
        text += f" and accuracy >= {goal.min_accuracy:g}"
    return text



def nonfinite_lines(result: OverfitRun) -> list[str]:
    """Where the run's first NaN/Inf came from, when it met one."""
    event = result.curve.nonfinite
    if event is None:
        return []
    place = event.where if event.where == event.kind else f"{event.kind} of {event.where}"
    return [f"first non-finite value at step {event.step}: {place} (see numerics)"]


def trace_line(result: OverfitRun) -> str:
    losses = result.curve.losses
    return "loss at step " + ", ".join(f"{i}: {losses[i]:.3g}" for i in sample_points(len(losses) - 1))



def accuracy_lines(result: OverfitRun) -> tuple[str, ...]:
    acc = result.curve.accuracies
    return (f"accuracy {acc[0]:.2f} at step 0 -> {acc[-1]:.2f} at step {len(acc) - 1}",) if acc else ()



def metrics(result: OverfitRun) -> dict[str, Any]:
    curve, goal, r = result.curve, result.goal, result.reading
    metrics: dict[str, Any] = {
        "reached": curve.reached_goal,
        "samples": result.settings.samples,
        "steps": curve.steps,
        "initial_loss": curve.initial,
        "final_loss": curve.final,
        "goal_loss": goal.loss,
        "floor": goal.floor,
        "constant_baseline": goal.baseline,
        "first_step_change": curve.first_step_change,
    }
    if curve.accuracies:
        metrics.update(initial_accuracy=curve.accuracies[0], final_accuracy=curve.accuracies[-1])
    if r is not None:
        metrics.update(
            pattern=r.pattern.value, level=r.level, best_loss=r.best, peak_loss=r.peak,
            tail_drop=r.tail_drop, steps_to_goal=r.steps_to_target, nonfinite_step=r.nonfinite_step,
            weight_change=result.weight_change, output_spread=result.output_spread,
            random_forward=result.random_forward,
        )
    return metrics



def loss_plot(result: OverfitRun, name: str, title: str, label: str) -> PlotData:
    curve, goal = result.curve, result.goal
    finite = [(i, v) for i, v in enumerate(curve.losses) if math.isfinite(v)]  # NaN/Inf cannot be drawn
    series = [
        (label, tuple(i for i, _ in finite), tuple(v for _, v in finite)),
        ("goal", (0, curve.steps), (goal.loss, goal.loss)),
    ]
    if goal.baseline is not None:
        series.append(("best constant prediction", (0, curve.steps), (goal.baseline, goal.baseline)))
    positive = all(v > 0 for _, _, ys in series for v in ys)
    return PlotData(name=name, title=title, xlabel="step", ylabel="loss", series=tuple(series), log_y=positive)
