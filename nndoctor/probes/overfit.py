"""The overfit run: can the model memorize a few samples with regularization off? (seed 002
"Overfit on a small dataset", Karpathy "overfit one batch").

``small_batch_run`` is the shared probe on the real data (``ctx.shared(small_batch_run,
settings)``); ``overfit`` runs the same procedure on any model copy and batch, so that easy_data
and the try-fixes loop judge their runs exactly as overfit_small_batch does.

"Memorized" is judged against two losses computed from the targets, not from the initial loss
(whose size depends on the initialization):

* the *floor*: the loss of a perfect prediction; 0 for most losses, above 0 with label smoothing
  or soft targets, where no output can do better;
* the *constant baseline*: the loss of the best input-independent prediction (the class prior,
  the target mean). The goal is to remove all but ``loss_ratio`` of the gap between the two,
  which for MSE reads as "explain 95% of the variance" and for cross-entropy "95% of the label
  entropy", whatever the scale of the targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor import curves, tokens
from nndoctor.context import Context
from nndoctor.loading import Subject
from nndoctor.probes import cost
from nndoctor.training import Curve, fit, make_optimizer, without_regularization

PHASE = "overfit_small_batch training"
# The fewest samples a compute-heavy model overfits: a batch that still spans most classes of a
# 10-class problem, and too many to memorize without a working loss and optimizer.
MIN_SAMPLES = 16


@dataclass(frozen=True)
class OverfitSettings:
    """The run's knobs; hashable so that ``ctx.shared`` caches one run per setting."""

    samples: int = 50
    max_steps: int = 1000
    loss_ratio: float = 0.05
    min_accuracy: float = 0.98
    steep_window: int = 40
    explode_factor: float = 10.0

    @classmethod
    def for_subject(cls, ctx: Context, thresholds: Mapping[str, Any]) -> "OverfitSettings":
        """The catalog's settings, with fewer samples (at least MIN_SAMPLES) for a compute-heavy
        model so that one full-batch forward pass stays within ``batch_flops``."""
        settings = cls(**{f.name: thresholds[f.name] for f in fields(cls) if f.name in thresholds})
        if "batch_flops" not in thresholds:
            return settings
        most = int(settings.samples)
        samples = cost.samples_within_flops(ctx, float(thresholds["batch_flops"]), most=most, least=min(MIN_SAMPLES, most))
        return replace(settings, samples=samples)


@dataclass(frozen=True)
class Goal:
    loss: float  # reached when the loss is at most this ...
    min_accuracy: float | None  # ... and (classification-type tasks) accuracy at least this
    floor: float  # the loss of a perfect prediction
    baseline: float | None  # the loss of the best constant prediction, when it could be computed

    def reached(self, loss: float, accuracy: float | None) -> bool:
        if loss > self.loss:
            return False
        return self.min_accuracy is None or accuracy is None or accuracy >= self.min_accuracy


@dataclass(frozen=True)
class OverfitRun:
    curve: Curve
    goal: Goal
    reading: curves.Reading | None  # how the curve failed; None when the goal was reached
    settings: OverfitSettings
    # The same weights gave two different losses: the forward is random even with dropout modules
    # off (functional dropout, noise layers), so the loss cannot settle.
    random_forward: bool = False
    # Measured after a missed goal, to tell the flat failures apart:
    weight_change: float | None = None  # ||w_end - w_start|| / max(||w_start||, ||w_end||)
    output_spread: float | None = None  # largest std across samples of an output, over the outputs' scale

    @property
    def reached(self) -> bool:
        return self.curve.reached_goal


def small_batch_run(ctx: Context, settings: OverfitSettings) -> OverfitRun:
    inputs, targets = ctx.batch(settings.samples)
    return overfit_fresh_copy(ctx, inputs, targets, settings)


def overfit_fresh_copy(ctx: Context, inputs: Any, targets: Any, settings: OverfitSettings) -> OverfitRun:
    """``overfit`` on a fresh copy of the user's model, whose unchanged weights serve as the
    starting point the weight change is measured from: no snapshot of the copy is kept."""
    return overfit(ctx, ctx.subject.fresh_model(), inputs, targets, settings, start=ctx.subject.model)


def overfit(
    ctx: Context, model: nn.Module, inputs: Any, targets: Any, settings: OverfitSettings, start: nn.Module | None = None,
) -> OverfitRun:
    """Train ``model`` (a copy: it is changed) full-batch on (inputs, targets) with dropout and
    weight decay off, stopping as soon as the goal is reached, and classify the curve if not.
    ``start``: a module holding the weights ``model`` starts from, parameter for parameter (the
    user's model for a fresh copy of it); without it a snapshot of ``model`` is kept."""
    ctx.seed_everything()
    model = without_regularization(model).train()
    with torch.no_grad():  # the initial prediction tells the shapes the goal's reference losses need
        initial_output = ctx.subject.predict(model, inputs)
    initial_loss = _loss_at(ctx.subject, initial_output, targets)
    goal = _goal(ctx.subject, inputs, initial_output, targets, initial_loss, settings)
    optimizer = make_optimizer(ctx, model, weight_decay=False)
    initial = [p.detach() for p in start.parameters()] if start is not None else [p.detach().clone() for p in model.parameters()]
    curve = fit(
        ctx, model, inputs, targets, settings.max_steps, optimizer, PHASE, goal=goal.reached,
        measure_first_step=True,
        out_of_reach=lambda losses: _hopeless(losses, goal, settings),
    )
    if curve.reached_goal:
        return OverfitRun(curve, goal, None, settings)
    return OverfitRun(
        curve, goal, _classify(curve, goal, settings), settings,
        random_forward=initial_loss is not None and not math.isclose(initial_loss, curve.initial, rel_tol=1e-5),
        weight_change=_weight_change(model, initial), output_spread=_output_spread(ctx, model, inputs),
    )


def _hopeless(losses: list[float], goal: Goal, settings: OverfitSettings) -> bool:
    """Stop early only on a run whose goal is out of reach and whose curve already reads as a
    failure: one still falling (a warning) may yet turn into a plateau (a failure) by the end of
    the budget, so it runs on and keeps the verdict the full budget gives."""
    if not curves.out_of_reach(losses, goal.loss, goal.floor, settings.max_steps):
        return False
    reading = curves.classify(
        losses, goal.loss, goal.floor, (), goal.baseline,
        steep_window=settings.steep_window, explode_factor=settings.explode_factor,
    )
    return reading.pattern is not curves.Pattern.STILL_FALLING


def _classify(curve: Curve, goal: Goal, settings: OverfitSettings) -> curves.Reading:
    reading = curves.classify(
        curve.losses, goal.loss, goal.floor, curve.accuracies, goal.baseline,
        steep_window=settings.steep_window, explode_factor=settings.explode_factor,
    )
    if curve.first_step_change is not None and curve.first_step_change > 0:
        # The optimizer itself climbed the loss: a sign error, whatever the curve did next.
        return replace(reading, pattern=curves.Pattern.RISING)
    return reading


def _weight_change(model: nn.Module, start: list[torch.Tensor]) -> float:
    """How far training moved the weights, relative to their size (about 0 when updates are
    negligible; bounded by 2). The larger of the two norms keeps zero-initialized models finite."""
    with torch.no_grad():
        end = [p.detach().float() for p in model.parameters()]
        moved = math.sqrt(sum(float((e - s.to(e.device).float()).pow(2).sum()) for e, s in zip(end, start)))
        size = max(math.sqrt(sum(float(t.float().pow(2).sum()) for t in group)) for group in (start, end))
    return moved / size if size > 0 else 0.0


def _output_spread(ctx: Context, model: nn.Module, inputs: Any) -> float | None:
    """0 when every sample gets the same output (the outputs ignore the inputs); None if the
    outputs are not finite."""
    with torch.no_grad():
        output = ctx.subject.predict(model, inputs).detach().float()
    if output.shape[0] < 2 or not bool(torch.isfinite(output).all()):
        return None
    scale = float(output.abs().max())
    return float(output.std(dim=0).max()) / scale if scale > 0 else 0.0


def _goal(
    subject: Subject, inputs: Any, output: torch.Tensor, targets: Any, initial: float | None, settings: OverfitSettings
) -> Goal:
    """Reached when the loss is within ``loss_ratio`` of the gap from the best constant prediction
    (or, without one, the initial loss) down to the floor, and the accuracy is high enough."""
    if subject.token_objective is not None:
        token_goal = _token_goal(subject, inputs, targets, initial, settings)
        if token_goal is not None:
            return token_goal
    floor = _loss_at(subject, perfect_prediction(subject, output, targets), targets)
    if floor is None or (initial is not None and floor > initial):
        floor = 0.0  # unknown (or not below the start): most losses bottom out at 0
    baseline = best_constant_loss(subject, output, targets)
    reference = baseline if baseline is not None and baseline > floor else initial
    min_accuracy = None if subject.task == "regression" else settings.min_accuracy
    return Goal(_target(reference, floor, settings.loss_ratio), min_accuracy, floor, baseline)


def _token_goal(subject: Subject, inputs: Any, targets: Any, initial: float | None, settings: OverfitSettings) -> Goal | None:
    """The goal for a token objective, from the losses of the best models on these sequences
    (tokens.references): the floor is what a model seeing what this one sees can reach (above 0
    for a causal model when sequences share a prefix), the baseline the label unigram's entropy;
    the accuracy asked for is the same share of the best model's accuracy."""
    objective = subject.token_objective
    ids = tokens.input_ids(inputs)
    if not isinstance(targets, torch.Tensor) or objective is None:
        return None
    found = tokens.references(objective, ids.to(targets.device) if isinstance(ids, torch.Tensor) else ids, targets)
    if found is None:
        return None
    reference = found.baseline if found.baseline > found.floor else initial
    return Goal(
        _target(reference, found.floor, settings.loss_ratio), settings.min_accuracy * found.best_accuracy,
        found.floor, found.baseline,
    )


def _target(reference: float | None, floor: float, ratio: float) -> float:
    if reference is None:  # not even the initial loss is finite: fit stops at step 0 anyway
        return floor
    if reference > floor:
        return floor + ratio * (reference - floor)
    # The loss starts at or below where it should end (a custom loss that can go negative): its
    # floor is unknown, so ask for the same relative drop instead.
    return reference - (1 - ratio) * abs(reference)


def _loss_at(subject: Subject, prediction: torch.Tensor | None, targets: Any) -> float | None:
    """The user's loss for a given prediction, or None when it cannot be evaluated."""
    if prediction is None:
        return None
    try:
        with torch.no_grad():
            value = float(subject.compute_loss(prediction, targets))
    except Exception:  # a custom loss may reject a made-up prediction in any way: no reference then
        return None
    return value if math.isfinite(value) else None


def _class_distributions(subject: Subject, output: torch.Tensor, targets: Any) -> torch.Tensor | None:
    """Per-sample target distributions (B, C) as the loss sees them (label smoothing included),
    for (B, C) outputs with class-index or probability targets; None otherwise."""
    if output.dim() != 2 or not isinstance(targets, torch.Tensor):
        return None
    classes = output.shape[1]
    if targets.is_floating_point() and targets.shape == output.shape:
        dist = targets.float()
    elif not targets.is_floating_point() and targets.shape == output.shape[:1]:
        valid = (targets >= 0) & (targets < classes)  # ignore_index entries get no class
        dist = torch.zeros_like(output, dtype=torch.float32)
        dist[valid] = nn.functional.one_hot(targets[valid].long(), classes).float()
    else:
        return None
    smoothing = float(getattr(subject.loss_fn, "label_smoothing", 0.0) or 0.0)
    return (1 - smoothing) * dist + smoothing / classes


def _binary_targets(output: torch.Tensor, targets: Any) -> torch.Tensor | None:
    if not isinstance(targets, torch.Tensor) or targets.numel() != output.numel():
        return None
    return targets.float().reshape(output.shape)


def _as_prediction(subject: Subject, probabilities: torch.Tensor) -> torch.Tensor:
    """Probabilities in the form the model emits: as they are for BCELoss, else logits."""
    p = probabilities.double().clamp(1e-12, 1 - 1e-12)  # double: 1 - 1e-12 must not round to 1
    return p if isinstance(subject.loss_fn, nn.BCELoss) else torch.log(p / (1 - p))


def perfect_prediction(subject: Subject, output: torch.Tensor, targets: Any) -> torch.Tensor | None:
    """The output a perfect memorizer would emit: the targets themselves (regression), or the
    log of each sample's target distribution (for cross-entropy, the smoothed one)."""
    if subject.task == "classification":
        dist = _class_distributions(subject, output, targets)
        return None if dist is None else dist.clamp_min(1e-12).log().to(output.dtype)
    if subject.task in ("binary", "multilabel"):
        t = _binary_targets(output, targets)
        return None if t is None else _as_prediction(subject, t).to(output.dtype)
    if isinstance(targets, torch.Tensor) and targets.numel() == output.numel():
        return targets.to(output.dtype).reshape(output.shape)
    return None


def best_constant_loss(subject: Subject, output: torch.Tensor, targets: Any) -> float | None:
    """The loss of the best prediction that ignores the inputs: the (smoothed) class prior,
    the positive rate, or the target mean/median. None when it cannot be computed."""
    candidates: list[torch.Tensor] = []
    if subject.task == "classification":
        dist = _class_distributions(subject, output, targets)
        if dist is not None:
            prior = dist.mean(dim=0, keepdim=True).clamp_min(1e-12)
            candidates.append(prior.log().expand_as(output).to(output.dtype))
    elif subject.task in ("binary", "multilabel"):
        t = _binary_targets(output, targets)
        if t is not None and t.dim() > 0:
            candidates.append(_as_prediction(subject, t.mean(dim=0, keepdim=True).expand_as(t)).to(output.dtype))
    elif isinstance(targets, torch.Tensor) and targets.numel() == output.numel() and output.dim() > 0:
        t = targets.to(output.dtype).reshape(output.shape)
        for center in (t.mean(dim=0, keepdim=True), t.median(dim=0, keepdim=True).values):
            candidates.append(center.expand_as(t))
    values = [v for v in (_loss_at(subject, c, targets) for c in candidates) if v is not None]
    return min(values) if values else None
