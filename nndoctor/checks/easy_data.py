"""easy_data: can the same model, loss and optimizer learn trivially easy data? (seeds 001/003:
"feed it some data that is really easy to train on, like using N words ("aaa", "bbb", "ccc",
etc.) as the input with a one-to-one correspondence to classes as the target").

The easy data keeps everything about the real batch that the model and the loss depend on (the
input structure, shapes, dtypes and token ranges; the target format, the classes, the range of
the target values) and replaces the content by a few prototypes, one per class (or per distinct
real target), each repeated with a little noise. A model that cannot learn that mapping has its
bug in the model, the loss or the optimizer: the data cannot be the cause. The run is the overfit
probe's procedure (dropout and weight decay off, early stop once the loss is near its floor and
the predictions are right), so its misses are classified the same way; one that is still falling
when the budget runs out learns, slowly, and is only warned about.

Prototypes, per input tensor:

* float tensors: the sum of a class-specific ±1 pattern over every element and class-specific
  codes along the first and the last per-sample axes, standardized. The codes survive the pooling
  of translation-invariant models: a CNN that averages over space still sees per-channel levels,
  a sequence model that averages over time still sees per-feature levels.
* integer tensors (tokens, categories): one token per class repeated at every position ("aaa"),
  chosen within each position's range in the real batch, so no embedding sees an unknown id (a
  random sequence per class when the vocabulary is smaller than the number of classes).
* masks (bool tensors, or 0/1 tensors beside the main input): copied from the real batch; they
  are structure (padding), not content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from nndoctor import batching
from nndoctor import run_description
from nndoctor.context import Context
from nndoctor.curves import Pattern
from nndoctor.probes.data import ignore_index
from nndoctor.probes.overfit import OverfitRun, OverfitSettings, overfit_fresh_copy
from nndoctor.result import Finding, Status

NOISE = 0.1  # per-element noise around each prototype, against prototypes of unit scale
MIN_PER_GROUP = 4  # samples per prototype: classes beyond samples / 4 are left out
MAX_TARGET_GROUPS = 8  # distinct target values used for regression, binary and multilabel tasks
FLOOR_FIX = (
    "Every easy sample is classified right, yet the loss cannot fall further: the model emits "
    "probabilities or squashed values (Softmax/Sigmoid/ReLU/Tanh) into a loss that expects logits. "
    "Emit raw logits and use the fused loss (CrossEntropyLoss, BCEWithLogitsLoss); see output_head."
)


@dataclass(frozen=True)
class EasyData:
    inputs: Any  # the same structure as the real inputs, on the run's device
    targets: torch.Tensor
    groups: int  # number of prototypes (classes or distinct target values)
    description: str  # how the inputs were made, for the report


class Unsupported(Exception):
    """The real data's format leaves no easy counterpart to build; the check skips."""


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    settings = OverfitSettings.for_subject(ctx, thresholds)
    inputs, targets = ctx.batch(settings.samples)
    try:
        easy = make_easy_data(ctx, inputs, targets, settings.samples)
    except Unsupported as reason:
        return Finding.skip(str(reason))
    result = overfit_fresh_copy(ctx, easy.inputs, easy.targets, settings)
    metrics = _metrics(result, easy)
    evidence = (f"easy data: {easy.description}", run_description.goal_line(result))
    plots = (run_description.loss_plot(result, "easy_data_loss", "Training on trivially easy data", "easy data loss"),)
    if result.reached:
        verdict = "model, loss and optimizer can learn: if the real data does not train (overfit_small_batch), look at the data"
        return Finding(Status.PASS, _success(result, easy), metrics, (*evidence, verdict), plots=plots)
    reading = result.reading
    status = Status.WARN if reading.pattern is Pattern.STILL_FALLING else Status.FAIL
    cause = (f"pattern: {reading.pattern.label}", *run_description.nonfinite_lines(result))
    return Finding(
        status, _failure(result, easy), metrics, (*cause, *evidence), fix=_fix(result), plots=plots,
        codes=(reading.pattern.value,),
    )


# --- the easy data -------------------------------------------------------------------------


def make_easy_data(ctx: Context, inputs: Any, targets: Any, samples: int) -> EasyData:
    """``samples`` easy samples shaped like the real batch (inputs, targets)."""
    if not isinstance(targets, torch.Tensor):
        raise Unsupported(f"targets are {batching.describe(targets)}, not a tensor: no easy targets to build")
    generator = torch.Generator().manual_seed(ctx.subject.seed)
    if ctx.subject.task == "classification":
        target_rows, what = _class_targets(targets, samples, ignore_index(ctx.subject.loss_fn), ctx.subject.output_width)
    else:
        target_rows, what = _value_targets(targets)
    groups = len(target_rows)
    group = torch.arange(samples) % groups
    easy_targets = target_rows[group].to(targets.device)
    main = batching.main_tensor(inputs)

    def easy_tensor(real: torch.Tensor) -> torch.Tensor:
        return _easy_tensor(real.cpu(), group, groups, generator, is_main=real is main).to(real.device)

    easy_inputs = _map_tensors(inputs, easy_tensor)
    description = f"{samples} samples, {groups} prototypes ({what}), inputs {_input_kind(main)}"
    return EasyData(easy_inputs, easy_targets, groups, description)


def _class_targets(targets: torch.Tensor, samples: int, ignored: int, width: int) -> tuple[torch.Tensor, str]:
    """One target row per class, in the real targets' format: the class index at every position
    of an integer target, or a one-hot row for probability targets. The classes are those the
    real batch holds, at most ``samples / 4`` of them; for one label per sample (a (N, C) output
    of ``width`` C), only those the output has a logit for: a label out of range is a data bug,
    which data_integrity reports and the easy data must not inherit."""
    soft = targets.is_floating_point()
    if soft and targets.dim() != 2:
        raise Unsupported(f"classification targets {batching.describe(targets)}: neither class indices nor rows of class probabilities")
    labels = (targets.argmax(dim=1) if soft else targets).detach().cpu().unique()
    labels = labels[(labels >= 0) & (labels != ignored)]
    if targets.dim() == 1:
        labels = labels[labels < width]
    if len(labels) < 2:
        raise Unsupported("the real batch holds fewer than two classes: nothing to tell apart")
    classes = labels[torch.linspace(0, len(labels) - 1, min(len(labels), samples // MIN_PER_GROUP)).round().long().unique()]
    if soft:
        rows = nn.functional.one_hot(classes, targets.shape[1]).to(targets.dtype)
    else:
        shape = targets.shape[1:]
        rows = classes.view(-1, *([1] * len(shape))).expand(-1, *shape).to(targets.dtype)
    return rows, f"classes {_listed(classes.tolist())}"


def _value_targets(targets: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Distinct target rows of the real batch (0/1 labels, label sets or regression values): the
    easy targets keep the real ones' range and format, which a bounded head may rely on."""
    rows = targets.reshape(len(targets), -1).detach().cpu().unique(dim=0)
    rows = rows[~rows.isnan().any(dim=1)] if rows.is_floating_point() else rows
    if len(rows) < 2:
        raise Unsupported("the real batch holds fewer than two distinct finite targets: nothing to tell apart")
    picked = rows[torch.linspace(0, len(rows) - 1, min(len(rows), MAX_TARGET_GROUPS)).round().long().unique()]
    return picked.reshape(-1, *targets.shape[1:]), f"{len(picked)} distinct real targets"


def _easy_tensor(real: torch.Tensor, group: torch.Tensor, groups: int, generator: torch.Generator, is_main: bool) -> torch.Tensor:
    if real.dim() == 0:
        return real
    if not is_main and _is_mask(real):
        return real[torch.arange(len(group)) % len(real)]  # the real rows, cycled
    if real.is_floating_point():
        prototypes = _float_prototypes(real.shape[1:], groups, generator)
        noise = NOISE * torch.randn(len(group), *real.shape[1:], generator=generator)
        return (prototypes[group] + noise).to(real.dtype)
    return _token_prototypes(real, groups, generator)[group]


def _is_mask(real: torch.Tensor) -> bool:
    return real.dtype == torch.bool or real.unique().numel() <= 2


def _float_prototypes(shape: torch.Size, groups: int, generator: torch.Generator) -> torch.Tensor:
    """(groups, *shape) standardized prototypes: a ±1 pattern per element plus codes along the
    first and the last per-sample axes, so that models pooling over any other axes still tell
    the classes apart. A sample of one number gets evenly spread levels instead."""
    if math.prod(shape) == 1:
        pattern = _levels(groups, generator).view(groups, *shape)
    else:
        pattern = torch.randint(0, 2, (groups, *shape), generator=generator).float() * 2 - 1
        for axis in sorted({0, len(shape) - 1}):
            pattern = pattern + _axis_code(shape, axis, groups, generator)
    return (pattern - pattern.mean()) / pattern.std().clamp_min(1e-6)


def _axis_code(shape: torch.Size, axis: int, groups: int, generator: torch.Generator) -> torch.Tensor:
    """(groups, *shape) values that vary only along one per-sample axis: a random code of that
    axis's length per class; along an axis of length 1 (a single channel) evenly spread levels,
    which random scalars would not keep apart."""
    length = shape[axis]
    if length == 1:
        codes = _levels(groups, generator).view(groups, 1)
    else:
        codes = torch.randn(groups, length, generator=generator)
    view = [groups] + [1] * len(shape)
    view[axis + 1] = length
    return codes.reshape(view).expand(groups, *shape)


def _levels(groups: int, generator: torch.Generator) -> torch.Tensor:
    """One number per class, evenly spread (random scalars could fall close together)."""
    return torch.linspace(-1.5, 1.5, groups)[torch.randperm(groups, generator=generator)]


def _token_prototypes(real: torch.Tensor, groups: int, generator: torch.Generator) -> torch.Tensor:
    """(groups, *shape) integer prototypes: class g's token at every position is the one at
    (g + 0.5) / groups of that position's range in the real batch, which avoids the range's ends
    (padding 0, special tokens at the top); positions that never vary keep their value. With
    fewer tokens than classes (DNA letters, bits) the classes get random sequences instead."""
    low = real.min(dim=0).values.to(torch.float64)
    span = real.max(dim=0).values.to(torch.float64) - low + 1
    if int(span.max()) >= groups:
        level = (torch.arange(groups, dtype=torch.float64) + 0.5) / groups
        position = level.view(groups, *([1] * (real.dim() - 1))).expand(groups, *real.shape[1:])
    else:
        position = torch.rand(groups, *real.shape[1:], generator=generator, dtype=torch.float64)
    return (low + position * span).floor().to(real.dtype)


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _input_kind(main: torch.Tensor) -> str:
    if main.is_floating_point():
        return f"{tuple(main.shape[1:])} float patterns"
    return f"{tuple(main.shape[1:])} token ids, one sequence per class"


def _listed(values: list[int]) -> str:
    return ", ".join(map(str, values)) if len(values) <= 6 else f"{values[0]}, {values[1]}, ..., {values[-1]}"


# --- the report ----------------------------------------------------------------------------


def _success(result: OverfitRun, easy: EasyData) -> str:
    curve = result.curve
    text = f"learned easy data ({easy.groups} prototypes) in {curve.steps} steps: loss {curve.initial:.3g} -> {curve.final:.3g}"
    if curve.accuracies:
        text += f", accuracy {curve.accuracies[-1]:.2f}"
    return text


def _failure(result: OverfitRun, easy: EasyData) -> str:
    curve, r = result.curve, result.reading
    if r.pattern is Pattern.STILL_FALLING:
        return (
            f"learns easy data ({easy.groups} prototypes) only slowly: loss {curve.initial:.3g} -> {curve.final:.3g} "
            f"after {curve.steps} steps, goal {result.goal.loss:.3g}"
        )
    reached = f", accuracy {curve.accuracies[-1]:.2f}" if curve.accuracies else ""
    return (
        f"cannot learn trivially easy data ({easy.groups} prototypes): loss {curve.initial:.3g} -> {curve.final:.3g}"
        f"{reached} after {curve.steps} steps ({r.pattern.label}; goal {result.goal.loss:.3g}): "
        "the bug is in the model, the loss or the optimizer, not the data"
    )


def _fix(result: OverfitRun) -> str:
    acc, goal = result.curve.accuracies, result.goal
    if acc and goal.min_accuracy is not None and acc[-1] >= goal.min_accuracy:
        return FLOOR_FIX
    return run_description.FIXES[result.reading.pattern]


def _metrics(result: OverfitRun, easy: EasyData) -> dict[str, Any]:
    return {"learned_easy": result.curve.reached_goal, "prototypes": easy.groups, **run_description.metrics(result)}


