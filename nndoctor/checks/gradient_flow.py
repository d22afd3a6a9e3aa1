"""gradient_flow: does every trainable parameter get a gradient, and how does its size change with
depth (seed 002: "Plot your gradients ... If you see that most of them are at zero ... back-
propagation is simply not happening")?

From one backward pass of the user's loss on a real batch (the shared step probe):

- trainable parameters (requires_grad) that never get a gradient: a module that never runs, a
  ``.detach()`` / ``torch.no_grad()`` cutting it off, or a gradient that stays exactly zero. A
  module none of whose parameters learns fails; a single tensor left out of a module that learns
  otherwise warns. A gradient that only arrives after a step or two, because a zero-initialized
  layer sits after the parameter (a zero classifier head, Fixup), is sound and only reported;
- trainable parameters the optimizer does not hold: they get gradients but never move;
- frozen parameters (requires_grad=False) are listed, not failed: freezing a backbone is common;
- vanishing / exploding across depth: ||grad|| / ||w|| of the earliest weight matrices against the
  latest, in forward execution order. Relative gradients are compared because layers differ in
  size and scale. Only weight matrices count: biases and norm parameters have other scales, and
  an embedding only gets gradients in the rows of the tokens in the batch. Gradients vanish when
  even the best-fed of the earliest matrices is starved, and explode when even the least-fed is
  flooded: some matrices get small gradients by design wherever they sit (attention queries and
  keys under the near-uniform attention of a fresh transformer: 1e-2 of their layer's values in
  a BERT), which says nothing about depth;
- vanishing / exploding in the whole network: a plain stack whose layers all have the same gain c
  grows activations as c^l and backpropagated gradients as c^(L-l), so every weight gradient
  carries c^(L-1) and the depth ratio stays near 1 while all of them are off by orders of
  magnitude. So the relative gradients are also judged on their absolute scale, per unit loss
  gradient at the output (see ``_output_gradient``: the loss's own scale, such as targets in the
  thousands or a summed reduction, is divided out and left to update_ratio and lr_range). At that
  scale the SGD learning rate that moves a weight matrix by CS231n's healthy ~1e-3 of its size is
  about 1e-3 / (||grad|| / ||w||); sound networks measure 1e-2..1 (learning rates 1e-3..1e-1).
  The whole network vanishes when even its largest relative gradient needs a learning rate beyond
  the usual range, and explodes when even its smallest does below it. The extremes, not a typical
  layer, are judged because sound designs scale some layers on purpose: ConvNeXt's layer scale
  (1e-6) leaves most weight matrices with tiny gradients, a small-init head gets a large one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch

from nndoctor.context import Context
from nndoctor.problems import Problem, codes_of, worst_status
from nndoctor.probes.initial import initial_pass
from nndoctor.probes.step import ParamStep, StepProbe, gradient_step
from nndoctor.result import Finding, PlotData, Status, Table

NAMES_SHOWN = 5


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    probe = ctx.shared(gradient_step)
    if not probe.finite:
        return _nonfinite(probe)
    trainable = [p for p in probe.params if p.requires_grad]
    frozen = [p for p in probe.params if not p.requires_grad]
    if not trainable:
        return Finding(
            Status.WARN, f"all {len(frozen)} parameter tensors are frozen (requires_grad=False): nothing will train",
            {"frozen": len(frozen)}, fix="Set requires_grad=True on the parameters you mean to train.",
            codes=("all_frozen",),
        )
    weights = _weights(trainable)
    depth = _depth(weights)
    scale = _scale(ctx, weights)
    problems = [
        *_missing_gradients(trainable),
        *_missing_from_optimizer(trainable),
        *([_judge_depth(depth, thresholds)] if depth else []),
        *([_judge_scale(scale, thresholds)] if scale else []),
    ]
    notes = [*_late_gradients(trainable), *_frozen_note(frozen)]
    return _finding(problems, notes, probe, depth, scale)


def _nonfinite(probe: StepProbe) -> Finding:
    bad = [p.name for p in probe.params if not p.grad_finite]
    where = f"non-finite gradients in {_names(bad)}" if bad else "no usable gradient"
    return Finding(
        Status.FAIL, f"the loss is {probe.loss:.3g} on the batch: {where}",
        {"loss": probe.loss, "nonfinite_gradients": len(bad)},
        ("see numerics for the first module that turns NaN/Inf",), codes=("nonfinite_gradients",),
    )


def _missing_gradients(trainable: list[ParamStep]) -> list[Problem]:
    """Trainable parameters that got no gradient in any step the probe took. A module none of
    whose parameters learns fails, by cause; a tensor or two missing in a module that otherwise
    learns is a loss but does not stop it from training, so it warns."""
    stuck = [p for p in trainable if p.gradient_step is None]
    learning = {p.module for p in trainable if p.gradient_step is not None}
    partial = [p for p in stuck if p.module in learning]
    problems = _modules_without_gradient([p for p in stuck if p.module not in learning])
    if partial:
        problems.append(Problem(
            Status.WARN, f"no gradient ever reaches {_names(p.name for p in partial)}, though the rest of {_modules(partial)} learns",
            ("e.g. a parameter forward does not use, or a bidirectional RNN read out at the last step only "
             "(the reverse direction has seen one token there, so its recurrent weights get no gradient)",),
            f"Use or remove {_names(p.name for p in partial)}.", code="partial_no_gradient",
        ))
    return problems


def _modules_without_gradient(stuck: list[ParamStep]) -> list[Problem]:
    never_ran = [p for p in stuck if not p.called and p.grad_norm is None]
    cut_off = [p for p in stuck if p.called and p.grad_norm is None]
    zero = [p for p in stuck if p.grad_norm is not None]
    problems = []
    if never_ran:
        problems.append(Problem(
            Status.FAIL, f"not run in forward, so no gradient: {_modules(never_ran)} ({_count(never_ran)})",
            (f"no gradient: {_names(p.name for p in never_ran)}",),
            f"Call {_modules(never_ran)} in forward, or delete them if they are left over.", code="module_not_run",
        ))
    if cut_off:
        problems.append(Problem(
            Status.FAIL, f"no gradient reaches {_modules(cut_off)} ({_count(cut_off)})",
            (f"grad is None after backward: {_names(p.name for p in cut_off)}",
             "the module runs, but a .detach(), torch.no_grad(), .item()/.numpy() or an output the loss "
             "does not use cuts it off from the loss"),
            f"Remove the .detach() / no_grad() between {_modules(cut_off)} and the loss.", code="gradient_cut_off",
        ))
    if zero:
        problems.append(Problem(
            Status.FAIL, f"the gradient of {_modules(zero)} is exactly zero ({_count(zero)})",
            (f"all-zero gradient: {_names(p.name for p in zero)}",
             "dead units, all-zero weights after them, or a non-differentiable op (round, argmax, "
             "comparisons, integer casts) between them and the loss"),
            "Re-initialize zeroed weights, avoid non-differentiable ops in forward, check for dead ReLUs.",
            code="zero_gradient",
        ))
    return problems


def _missing_from_optimizer(trainable: list[ParamStep]) -> list[Problem]:
    missing = [p for p in trainable if not p.in_optimizer]
    if not missing:
        return []
    return [Problem(
        Status.FAIL, f"{_modules(missing)} are trainable but not in the optimizer ({_count(missing)})",
        (f"never updated: {_names(p.name for p in missing)}",),
        f"Pass all of model.parameters() to the optimizer (it holds {len(trainable) - len(missing)} of "
        f"{len(trainable)} trainable tensors), or set requires_grad=False on what you mean to freeze.",
        code="not_in_optimizer",
    )]


@dataclass(frozen=True)
class Depth:
    early: tuple[ParamStep, ...]
    late: tuple[ParamStep, ...]
    ratio: float  # geometric-mean relative gradient of the early group over the late group's
    highest: float  # the early group's largest relative gradient over the late group's geometric mean
    lowest: float  # and its smallest


def _weights(trainable: list[ParamStep]) -> list[ParamStep]:
    """Weight matrices with a non-zero gradient at the first step, in execution order."""
    return [p for p in trainable if p.role == "weight" and p.has_gradient and (p.relative_gradient or 0) > 0]


def _depth(weights: list[ParamStep]) -> Depth | None:
    """Earliest and latest quarter of the weight matrices (at least one each) in execution order."""
    if len(weights) < 2:
        return None
    k = max(1, len(weights) // 4)
    early, late = weights[:k], weights[-k:]
    typical_late = _geomean(late)
    relative = [p.relative_gradient for p in early]
    return Depth(tuple(early), tuple(late), _geomean(early) / typical_late, max(relative) / typical_late, min(relative) / typical_late)


def _geomean(params: Sequence[ParamStep]) -> float:
    return math.exp(sum(math.log(p.relative_gradient) for p in params) / len(params))


def _judge_depth(depth: Depth, thresholds: Mapping[str, Any]) -> Problem:
    evidence = (
        f"||grad||/||w|| of the earliest layers ({_names(p.name for p in depth.early)}): {_geomean(depth.early):.2e}",
        f"||grad||/||w|| of the latest layers ({_names(p.name for p in depth.late)}): {_geomean(depth.late):.2e}",
    )
    text = f"earliest/latest relative gradient {depth.ratio:.2g}"
    if depth.highest < thresholds["vanish_ratio_warn"]:
        status = Status.FAIL if depth.highest < thresholds["vanish_ratio_fail"] else Status.WARN
        return Problem(
            status, f"vanishing gradients: {text}, {depth.highest:.2g} for the best-fed of the earliest layers", evidence,
            "Use ReLU-family activations with He init, add normalization layers or residual connections.",
            code="vanishing_with_depth",
        )
    if depth.lowest > thresholds["explode_ratio_warn"]:
        status = Status.FAIL if depth.lowest > thresholds["explode_ratio_fail"] else Status.WARN
        return Problem(
            status, f"exploding gradients: {text}, {depth.lowest:.2g} for the least-fed of the earliest layers", evidence,
            "Scale down the initialization, add normalization layers, or clip gradients (clip_grad_norm_).",
            code="exploding_with_depth",
        )
    if depth.ratio < thresholds["vanish_ratio_warn"]:  # small by design in some matrices only (see above)
        text += f", {depth.highest:.2g} for the best-fed of the earliest layers"
    elif depth.ratio > thresholds["explode_ratio_warn"]:
        text += f", {depth.lowest:.2g} for the least-fed of the earliest layers"
    return Problem(Status.PASS, text, evidence)


@dataclass(frozen=True)
class Scale:
    output_gradient: float  # see _output_gradient
    least: ParamStep  # the weight matrix with the smallest relative gradient
    most: ParamStep  # and the largest

    @property
    def low(self) -> float:
        """The smallest ||grad|| / ||w|| per unit loss gradient at the output."""
        return self.least.relative_gradient / self.output_gradient

    @property
    def high(self) -> float:
        return self.most.relative_gradient / self.output_gradient


def _output_gradient(ctx: Context) -> float | None:
    """The loss gradient at the model's output: root mean square per loss term (a row of class
    scores, or one element for elementwise losses), times the number of terms when the loss sums
    them instead of averaging. About 1 for a mean cross-entropy at init (||softmax - one-hot||),
    2 x the rms error for MSE. Every weight gradient is proportional to it, so it carries the
    loss's own scale. The loss alone is differentiated again, on the initial pass's output: the
    model does not run."""
    initial = ctx.shared(initial_pass)
    output = initial.output.detach().clone().requires_grad_(True)
    loss = ctx.subject.compute_loss(output, initial.targets)
    (grad,) = torch.autograd.grad(loss, output, allow_unused=True)
    if grad is None:
        return None
    row = ctx.subject.output_width if ctx.subject.task == "classification" else 1
    terms = max(1, output.numel() // max(1, row))
    value = float(torch.linalg.vector_norm(grad.float())) * math.sqrt(terms)
    return value if math.isfinite(value) and value > 0 else None


def _scale(ctx: Context, weights: list[ParamStep]) -> Scale | None:
    """None for a single weight matrix: it is no chain of layers to vanish or explode through (a
    logistic regression on 224x224 pixels measures ~100 from its input width alone)."""
    output_gradient = _output_gradient(ctx) if len(weights) >= 2 else None
    if output_gradient is None:
        return None
    by_size = sorted(weights, key=lambda p: p.relative_gradient)
    return Scale(output_gradient, by_size[0], by_size[-1])


def _judge_scale(scale: Scale, thresholds: Mapping[str, Any]) -> Problem:
    evidence = (
        f"||grad||/||w|| per unit loss gradient at the output: {scale.high:.2e} at most ({scale.most.name}), "
        f"{scale.low:.2e} at least ({scale.least.name}); sound networks: 1e-2..1",
        f"loss gradient at the output: {scale.output_gradient:.3g} (rms per loss term)",
    )
    if scale.high < thresholds["vanish_scale_warn"]:
        status = Status.FAIL if scale.high < thresholds["vanish_scale_fail"] else Status.WARN
        return Problem(
            status, f"vanishing gradients in every layer: ||grad||/||w|| at most {scale.high:.2g} per unit loss "
                    f"gradient at the output, where sound networks get 1e-2..1",
            evidence,
            "Initialize each layer for its activation (nn.init.kaiming_normal_ for ReLU, xavier_normal_ for "
            "tanh/sigmoid), or add normalization layers (BatchNorm/LayerNorm) or residual connections.",
            code="vanishing_everywhere",
        )
    if scale.low > thresholds["explode_scale_warn"]:
        status = Status.FAIL if scale.low > thresholds["explode_scale_fail"] else Status.WARN
        return Problem(
            status, f"exploding gradients in every layer: ||grad||/||w|| at least {scale.low:.2g} per unit loss "
                    f"gradient at the output, where sound networks get 1e-2..1",
            evidence,
            "Scale the initialization down to He/Glorot (every layer amplifies the signal now), add normalization "
            "layers, and clip gradients (torch.nn.utils.clip_grad_norm_).",
            code="exploding_everywhere",
        )
    text = f"||grad||/||w|| {scale.low:.2g}..{scale.high:.2g} per unit loss gradient at the output"
    return Problem(Status.PASS, text, evidence)


def _late_gradients(trainable: list[ParamStep]) -> list[str]:
    late = [p for p in trainable if p.gradient_step and p.gradient_step > 1]
    if not late:
        return []
    return [
        f"{_count(late)} of {_modules(late)} got their first gradient only at step "
        f"{max(p.gradient_step for p in late)}: zero-initialized layers after them pass no gradient "
        f"until they have been updated once (fine for a zero-init head or residual branch)"
    ]


def _frozen_note(frozen: list[ParamStep]) -> list[str]:
    if not frozen:
        return []
    return [f"frozen (requires_grad=False), not trained: {_count(frozen)} of {_modules(frozen)}"]


def _finding(
    problems: list[Problem], notes: list[str], probe: StepProbe, depth: Depth | None, scale: Scale | None,
) -> Finding:
    status = worst_status(p.status for p in problems)
    shown = [p for p in problems if p.status is status]
    trainable = sum(p.requires_grad for p in probe.params)
    summary = "; ".join(p.summary for p in shown) if status is not Status.PASS else (
        f"all {trainable} trainable parameter tensors get gradients" + (f"; {shown[0].summary}" if shown else "")
    )
    metrics = {
        "trainable": trainable,
        "frozen": len(probe.params) - trainable,
        "no_gradient": sum(p.requires_grad and p.gradient_step is None for p in probe.params),
        "not_in_optimizer": sum(p.requires_grad and not p.in_optimizer for p in probe.params),
        "depth_ratio": depth.ratio if depth else None,
        "depth_ratio_highest": depth.highest if depth else None,
        "depth_ratio_lowest": depth.lowest if depth else None,
        "gradient_scale_min": scale.low if scale else None,
        "gradient_scale_max": scale.high if scale else None,
        "output_gradient": scale.output_gradient if scale else None,
        "backward_passes": probe.passes,
    }
    fixes = [p.fix for p in problems if p.status is not Status.PASS and p.fix]
    return Finding(
        status, summary, metrics,
        evidence=tuple(line for p in problems for line in p.evidence) + tuple(notes),
        tables=(_table(probe),), fix=" ".join(fixes) or None, plots=(_plot(probe),), codes=codes_of(problems),
    )


def _shown_in_table(p: ParamStep) -> bool:
    flagged = p.requires_grad and (p.gradient_step is None or not p.in_optimizer)
    return p.role in ("weight", "embedding") or flagged


def _table(probe: StepProbe) -> Table:
    rows = tuple(
        (p.name, p.relative_gradient, p.grad_mean_abs, p.grad_max_abs, _note(p))
        for p in probe.params if _shown_in_table(p)
    )
    return Table("Gradient per layer (forward order)", ("parameter", "||grad||/||w||", "mean |grad|", "max |grad|", "note"), rows)


def _note(p: ParamStep) -> str:
    if not p.requires_grad:
        return "frozen"
    notes = []
    if p.gradient_step is None:
        notes.append("no gradient" if p.grad_norm is None else "zero gradient")
    elif p.gradient_step > 1:
        notes.append(f"gradient from step {p.gradient_step}")
    if not p.in_optimizer:
        notes.append("not in optimizer")
    return ", ".join(notes)


def _plot(probe: StepProbe) -> PlotData:
    weights = [p for p in probe.params if p.role in ("weight", "embedding")]
    names = tuple(p.name.removesuffix(".weight") for p in weights)
    return PlotData(
        name="gradient_flow", title="Gradient magnitude per layer (first backward pass)",
        xlabel="layer (forward order)", ylabel="|grad|",
        series=(
            ("max |grad|", names, tuple(p.grad_max_abs or 0.0 for p in weights)),
            ("mean |grad|", names, tuple(p.grad_mean_abs or 0.0 for p in weights)),
        ),
        log_y=True, kind="bar",
    )


def _count(params: Sequence[ParamStep]) -> str:
    return f"{len(params)} parameter tensor" + ("s" if len(params) != 1 else "")


def _modules(params: Iterable[ParamStep]) -> str:
    paths = dict.fromkeys(p.module or "<model>" for p in params)
    return _names(paths)


def _names(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
