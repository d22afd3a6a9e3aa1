"""data_integrity: data the loss can learn from (seeds 001/003: "a NaN value is fed into the loss
function"; Tobin, Ivanov).

Four things are looked at, each turning into a problem with its own fix:

* NaN/Inf in inputs and targets, over the whole dataset where it is held in memory, else a scan;
* class indices the model cannot score: outside [0, C) for C = the model's output width (the
  loss's ignore_index excepted). Judged on the values, without calling the loss, which would
  raise "Target 10 is out of bounds" instead of saying which samples hold label 10;
  soft targets for CrossEntropyLoss must be probability vectors; BCE targets must lie in [0, 1];
* output and target shapes that broadcast at the loss, found on a real batch through a copy of
  the model: MSELoss on output (B, 1) and target (B,) compares every prediction with every
  target, a (B, B) matrix, and only warns. For a hand-written loss the test is empirical: if its
  value changes once the output is reshaped to the target's shape, it broadcasts;
* a dataset too small for the other checks (fewer than min_samples).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from nndoctor.context import Context
from nndoctor.problems import Problem, codes_of
from nndoctor.loading import BINARY_LOSSES, CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from nndoctor.probes.data import Column, dataset_inputs, dataset_targets, ignore_index, named_tensors
from nndoctor.result import Finding, Status

SHAPE_BATCH = 8  # samples sent through the model to compare output and target shapes
CHUNK_ELEMENTS = 16_000_000  # the NaN/Inf scan looks at this many elements at a time
ELEMENTWISE_LOSSES = REGRESSION_LOSSES + BINARY_LOSSES


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    listed = int(thresholds["max_listed"])
    inputs, targets = ctx.shared(dataset_inputs), ctx.shared(dataset_targets)
    output, batch_target = _model_output(ctx)
    loss_fn, task = ctx.subject.loss_fn, ctx.subject.task
    problems = [
        p
        for p in (
            _nonfinite_problem("inputs", inputs, listed),
            _nonfinite_problem("targets", targets, listed),
            _label_problem(loss_fn, task, targets, output, listed),
            _soft_label_problem(loss_fn, targets, listed),
            _bce_target_problem(loss_fn, targets, listed),
            _shape_problem(ctx, output, batch_target),
            _size_problem(ctx.dataset_size, int(thresholds["min_samples"])),
        )
        if p is not None
    ]
    metrics = {
        "dataset_size": ctx.dataset_size,
        "inputs_checked": len(inputs.indices),
        "targets_checked": len(targets.indices),
        "output_shape": list(output.shape),
        "target_shape": list(batch_target.shape) if isinstance(batch_target, torch.Tensor) else None,
        "problems": len(problems),
    }
    if not problems:
        facts = _target_facts(loss_fn, task, targets, output)
        return Finding(Status.PASS, _clean_summary(inputs, targets, output, batch_target, facts), metrics)
    problems.sort(key=lambda p: p.status is not Status.FAIL)
    status = problems[0].status
    return Finding(
        status,
        "; ".join(p.summary for p in problems),
        metrics,
        evidence=tuple(line for p in problems for line in p.evidence),
        fix=" ".join(dict.fromkeys(p.fix for p in problems)),
        codes=codes_of(problems),
    )


def _model_output(ctx: Context) -> tuple[torch.Tensor, Any]:
    """The prediction on a few real samples (eval mode: BatchNorm copes with any batch size)."""
    inputs, target = ctx.batch(SHAPE_BATCH)
    model = ctx.subject.fresh_model().eval()
    with torch.no_grad():
        return ctx.subject.predict(model, inputs).detach(), target


def _listed(indices: torch.Tensor, limit: int) -> str:
    shown = ", ".join(str(i) for i in indices[:limit].tolist())
    more = len(indices) - limit
    return f"{shown} and {more} more" if more > 0 else shown


def _samples(count: int) -> str:
    return f"{count} sample" + ("" if count == 1 else "s")


def _per_sample(mask: torch.Tensor) -> torch.Tensor:
    """Which samples (rows) hold any flagged element."""
    return mask.reshape(len(mask), -1).any(dim=1)


def _rows_where(tensor: torch.Tensor, predicate) -> torch.Tensor:
    """Rows (samples) holding any element for which ``predicate`` is true, in bounded chunks."""
    flat = tensor.reshape(len(tensor), -1)
    step = max(1, CHUNK_ELEMENTS // max(1, flat.shape[1]))
    return torch.cat([_per_sample(predicate(flat[i:i + step])) for i in range(0, len(flat), step)])


def _nonfinite_problem(what: str, column: Column, listed: int) -> Problem | None:
    evidence, kinds, total = [], {}, torch.zeros(len(column.indices), dtype=torch.bool)
    for name, tensor in named_tensors(column.values):
        if not tensor.is_floating_point():
            continue
        for kind, predicate in (("NaN", torch.isnan), ("Inf", torch.isinf)):
            rows = _rows_where(tensor, predicate)
            if rows.any():
                total |= rows
                kinds[kind] = True
                bad = column.indices[rows]
                evidence.append(f"{kind} in the {what}{name} of {_samples(len(bad))}: indices {_listed(bad, listed)}")
    if not total.any():
        return None
    return Problem(
        Status.FAIL,
        f"{'/'.join(kinds)} in the {what} of {_samples(int(total.sum()))} ({column.coverage})",
        tuple(evidence),
        f"Find the preprocessing step that produces non-finite {what} (log of 0, division by 0, "
        f"missing values read as NaN) and fix or drop those samples.",
        code="nonfinite_" + what,
    )


def _class_count(loss_fn: Any, output: torch.Tensor) -> int | None:
    """Classes the model scores: dim 1 for CrossEntropyLoss/NLLLoss, else the last dim; None for a
    single output, which a hand-written loss may well read as one logit for labels {0, 1}."""
    if isinstance(loss_fn, CLASSIFICATION_LOSSES) and output.dim() >= 2:
        return int(output.shape[1])
    width = int(output.shape[-1]) if output.dim() >= 2 else 1
    return width if width >= 2 else None


def _label_problem(loss_fn: Any, task: str, column: Column, output: torch.Tensor, listed: int) -> Problem | None:
    labels = column.values
    classes = _class_count(loss_fn, output)
    if task != "classification" or not isinstance(labels, torch.Tensor) or classes is None:
        return None
    if labels.is_floating_point() or labels.dtype == torch.bool:
        return None
    ignored = labels == ignore_index(loss_fn)
    outside = ((labels < 0) | (labels >= classes)) & ~ignored
    rows = _per_sample(outside)
    if not rows.any():
        return None
    used = labels[~ignored]
    low, high = int(used.min()), int(used.max())
    bad = column.indices[rows]
    values = torch.unique(labels[outside])
    return Problem(
        Status.FAIL,
        f"labels span {low}..{high} but the model scores {classes} classes (valid 0..{classes - 1}): "
        f"{_samples(len(bad))} out of range ({column.coverage})",
        (
            f"out-of-range label values: {_listed(values, 10)}",
            f"samples with them: indices {_listed(bad, listed)}",
        ),
        _label_fix(low, high, classes),
        code="labels_out_of_range",
    )


def _label_fix(low: int, high: int, classes: int) -> str:
    if low == 1 and high == classes:
        return f"The labels look 1-based (1..{classes}): subtract 1 so that they run 0..{classes - 1}."
    if low >= 0:
        return (
            f"Remap the labels into 0..{classes - 1}, or give the final layer {high + 1} outputs "
            f"if there really are {high + 1} classes."
        )
    return (
        "Negative labels are only allowed as the loss's ignore_index; remap them into "
        f"0..{classes - 1} or set ignore_index to the padding value."
    )


def _soft_label_problem(loss_fn: Any, column: Column, listed: int) -> Problem | None:
    """Float targets for CrossEntropyLoss are class probabilities: in [0, 1], summing to 1."""
    targets = column.values
    if not isinstance(loss_fn, nn.CrossEntropyLoss) or not isinstance(targets, torch.Tensor):
        return None
    if not targets.is_floating_point() or targets.dim() < 2:
        return None
    sums = targets.sum(dim=1)
    off = (targets < 0) | (targets > 1)
    rows = _per_sample(off) | _per_sample((sums - 1).abs() > 1e-3)
    if not rows.any():
        return None
    bad = column.indices[rows]
    return Problem(
        Status.FAIL,
        f"CrossEntropyLoss got float targets that are not probability vectors in {_samples(len(bad))}",
        (
            f"target values {float(targets.min()):.3g}..{float(targets.max()):.3g}, row sums "
            f"{float(sums.min()):.3g}..{float(sums.max()):.3g}",
            f"samples: indices {_listed(bad, listed)}",
        ),
        "Give CrossEntropyLoss integer class indices, or rows that are probability vectors (one-hot or "
        "smoothed); for several labels per sample use BCEWithLogitsLoss.",
        code="soft_targets_not_probabilities",
    )


def _bce_target_problem(loss_fn: Any, column: Column, listed: int) -> Problem | None:
    targets = column.values
    if not isinstance(loss_fn, BINARY_LOSSES) or not isinstance(targets, torch.Tensor):
        return None
    if not targets.is_floating_point():
        return None
    rows = _per_sample((targets < 0) | (targets > 1))
    if not rows.any():
        return None
    values = torch.unique(targets[torch.isfinite(targets)])
    shown = "{" + ", ".join(f"{v:g}" for v in values[:6].tolist()) + (", ..." if len(values) > 6 else "") + "}"
    bad = column.indices[rows]
    return Problem(
        Status.FAIL,
        f"{type(loss_fn).__name__} needs targets in [0, 1], the targets take the values {shown} "
        f"({_samples(len(bad))} outside, {column.coverage})",
        (f"samples: indices {_listed(bad, listed)}",),
        _bce_fix(float(values.min()), float(values.max())),
        code="targets_outside_0_1",
    )


def _bce_fix(low: float, high: float) -> str:
    if low < 0:
        return f"Map the targets from [{low:g}, {high:g}] to [0, 1]: y = (y + {-low:g}) / {high - low:g}."
    return f"Scale the targets into [0, 1]: divide by {high:g}."


def _shape_problem(ctx: Context, output: torch.Tensor, target: Any) -> Problem | None:
    if not isinstance(target, torch.Tensor) or output.shape == target.shape:
        return None
    loss_fn = ctx.subject.loss_fn
    if isinstance(loss_fn, ELEMENTWISE_LOSSES):
        return _broadcast_problem(type(loss_fn).__name__, output, target)
    custom = not isinstance(loss_fn, nn.modules.loss._Loss)
    if custom and ctx.subject.task != "classification" and output.numel() == target.numel():
        return _custom_broadcast_problem(ctx, output, target)
    return None


def _broadcast_problem(loss_name: str, output: torch.Tensor, target: torch.Tensor) -> Problem:
    try:
        met = f"broadcast to {tuple(torch.broadcast_shapes(output.shape, target.shape))}"
    except RuntimeError:
        met = "do not broadcast"
    return Problem(
        Status.FAIL,
        f"{loss_name} receives output {tuple(output.shape)} and target {tuple(target.shape)}, which {met}",
        (f"{loss_name} compares element by element: a (B, 1) output against (B,) targets pairs every prediction with every target",),
        _reshape_fix(output, target),
        code="shapes_broadcast",
    )


def _custom_broadcast_problem(ctx: Context, output: torch.Tensor, target: torch.Tensor) -> Problem | None:
    try:
        with torch.no_grad():
            as_is = float(ctx.subject.compute_loss(output, target))
            reshaped = float(ctx.subject.compute_loss(output.reshape(target.shape), target))
    except Exception:  # a hand-written loss may reject the reshaped output: nothing to conclude
        return None
    if abs(as_is - reshaped) <= 1e-5 * max(1.0, abs(reshaped)):
        return None
    return Problem(
        Status.FAIL,
        f"the loss broadcasts output {tuple(output.shape)} against target {tuple(target.shape)}: "
        f"{as_is:.4g} as given, {reshaped:.4g} with matching shapes",
        ("the same numbers in matching shapes give a different loss, so the loss pairs predictions with the wrong targets",),
        _reshape_fix(output, target),
        code="shapes_broadcast",
    )


def _reshape_fix(output: torch.Tensor, target: torch.Tensor) -> str:
    if output.dim() == target.dim() + 1 and output.shape[-1] == 1:
        return "Give the targets the output's shape (y.view(-1, 1) / y.unsqueeze(1)) or squeeze the output (output.squeeze(1))."
    return f"Make the targets {tuple(output.shape)}-shaped like the output (or reshape the output to the targets')."


def _size_problem(size: int, minimum: int) -> Problem | None:
    if size >= minimum:
        return None
    return Problem(
        Status.WARN,
        f"only {_samples(size)} (fewer than {minimum})",
        (f"the dataset holds {size} (input, target) pairs; the overfit test alone uses {minimum}",),
        "Point nndoctor at the real training set (or a larger slice of it).",
        code="too_few_samples",
    )


def _clean_summary(inputs: Column, targets: Column, output: torch.Tensor, target: Any, facts: str) -> str:
    checked = inputs.coverage if inputs.coverage == targets.coverage else f"inputs: {inputs.coverage}, targets: {targets.coverage}"
    shape = f", output {tuple(output.shape)} meets target {tuple(target.shape)}" if isinstance(target, torch.Tensor) else ""
    return f"{checked}: inputs and targets finite, {facts}{shape}"


def _target_facts(loss_fn: Any, task: str, column: Column, output: torch.Tensor) -> str:
    """What the pass summary states about the targets, e.g. "labels 0..9 for 10 classes"."""
    targets = column.values
    if not isinstance(targets, torch.Tensor) or targets.dtype == torch.bool:
        return "targets valid for the loss"
    if task == "classification" and not targets.is_floating_point():
        used = targets[targets != ignore_index(loss_fn)]
        classes = _class_count(loss_fn, output)
        if used.numel():
            scored = f" for {classes} classes" if classes else ""
            return f"labels {int(used.min())}..{int(used.max())}{scored}"
    return f"targets in [{float(targets.min()):.3g}, {float(targets.max()):.3g}]"
