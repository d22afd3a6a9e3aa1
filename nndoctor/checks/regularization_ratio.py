"""regularization_ratio: does regularization pull on the weights harder than the data does at init?
(seed 002: "If your regularization loss dominates your cross-entropy loss by a magnitude of 10x or
more, then reduce your regularization lambda or decrease the magnitude of your initial weights";
seed 004: Keras L2 with lambda=1 on a small sigmoid network that then learns nothing.)

The seed's worry is an optimizer "more concerned with penalizing large weights than with
converging to a solution". What the optimizer follows is the gradient, so the verdict compares the
two pulls where the optimizer applies them; the seed's loss ratio is reported beside it:

* coupled weight decay (SGD, Adam, RMSprop ... ``weight_decay``) is L2 regularization: the
  optimizer adds wd*w to the gradient, which is the gradient of the penalty 0.5*wd*sum(w^2). An
  explicit ``regularization(model)`` penalty enters the gradient the same way. Their joint pull
  ||wd*w + grad(penalty)|| is compared with the data gradient ||grad(loss)||.
* decoupled decay (AdamW; Adam/NAdam/RAdam with decoupled_weight_decay; Adafactor) adds no loss
  term: it shrinks the weights by lr*wd*w each step, beside the optimizer's own step. Adam's first
  step moves every weight that has a gradient by about lr, so the step is about lr*sqrt(n) long
  and the ratio is wd*||w|| / sqrt(n), independent of the learning rate.

Why not the loss ratio alone: with normalization layers most weights are scale-invariant, so the
L2 penalty of a deep BatchNorm network is large yet harmless. A ResNet-152 set up the CIFAR way (SGD,
weight decay 5e-4) has a penalty 21x its initial loss while the decay's gradient is 3e-5 of the
data's; a 400-25-10 sigmoid network with weight decay 1 (seed 004) has a penalty only 2.5x its
loss but a decay gradient about 10x the data's, and it learns nothing. Only parameters that get a
gradient are counted: the optimizer decays no others.

Measured on the shared gradient step (same batch and copy as gradient_flow and update_ratio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor import training
from nndoctor.context import Context
from nndoctor.probes.step import ParamStep, StepProbe, gradient_step
from nndoctor.result import Finding, Status, Table

# The fix proposes the strength at which the regularization pulls a tenth as hard as the data.
TARGET_RATIO = 0.1
DECOUPLED_OPTIMIZERS = (torch.optim.Adafactor,)  # decoupled by construction, no flag


@dataclass(frozen=True)
class GroupPull:
    """The weight decay of one optimizer parameter group, over its parameters that get a gradient."""

    index: int
    tensors: int
    weights: int
    weight_decay: float
    decoupled: bool
    squared_norm: float  # sum(w^2)
    data_gradient: float  # ||grad(loss)||
    first_step: float  # ||Adam's first step|| / lr ~ sqrt(number of weights with a gradient)

    @property
    def decay_pull(self) -> float:
        return self.weight_decay * math.sqrt(self.squared_norm)

    @property
    def penalty(self) -> float:
        """The L2 loss term coupled decay is the gradient of; decoupled decay has none."""
        return 0.0 if self.decoupled else 0.5 * self.weight_decay * self.squared_norm

    @property
    def data_pull(self) -> float:
        return self.first_step if self.decoupled else self.data_gradient

    @property
    def ratio(self) -> float | None:
        return self.decay_pull / self.data_pull if self.data_pull > 0 else None


@dataclass(frozen=True)
class Penalty:
    """The model file's regularization(model) on the initial weights."""

    value: float
    gradients: dict[str, torch.Tensor]  # parameter name -> d penalty / d parameter


@dataclass(frozen=True)
class Pulls:
    """Everything the verdict weighs: per-group decay, the explicit penalty and the data's pull."""

    groups: list[GroupPull]
    penalty: Penalty | None
    coupled_pull: float  # ||wd*w + grad(penalty)|| over the L2-decayed (coupled) groups
    data_loss: float

    @property
    def decayed(self) -> list[GroupPull]:
        return [g for g in self.groups if g.weight_decay > 0 and g.tensors]

    @property
    def data_gradient(self) -> float:
        return math.sqrt(sum(g.data_gradient ** 2 for g in self.groups))

    @property
    def gradient_ratio(self) -> float:
        return self.coupled_pull / self.data_gradient

    @property
    def decoupled_ratio(self) -> float:
        """Decoupled decay step against the optimizer's first step, over all parameters."""
        decay = math.sqrt(sum(g.decay_pull ** 2 for g in self.groups if g.decoupled))
        step = math.sqrt(sum(g.first_step ** 2 for g in self.groups))
        return decay / step if step > 0 else 0.0

    @property
    def ratio(self) -> float:
        return max(self.gradient_ratio, self.decoupled_ratio)

    @property
    def regularization_loss(self) -> float:
        return sum(g.penalty for g in self.groups) + (self.penalty.value if self.penalty else 0.0)


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    probe = ctx.shared(gradient_step)
    if not probe.finite:
        return Finding.skip(f"the loss or a gradient is not finite at init (loss {probe.loss:.3g}); see numerics")
    pulls = _measure(ctx, probe)
    if not pulls.decayed and pulls.penalty is None:
        return Finding(Status.PASS, f"no weight decay or penalty configured ({probe.optimizer})", {"optimizer": probe.optimizer})
    if pulls.penalty is not None and not math.isfinite(pulls.penalty.value):
        return Finding(
            Status.FAIL, f"regularization(model) returned {pulls.penalty.value} at init",
            fix="Make regularization(model) finite: look for a log or a division of weights that can be 0.",
            codes=("penalty_not_finite",),
        )
    if pulls.data_gradient == 0:
        return Finding.skip("the data loss has no gradient at init, so nothing to weigh the regularization against; see gradient_flow")
    status = _judge(pulls.ratio, thresholds)
    shown = [g for g in pulls.groups if g.tensors] if pulls.decayed else []  # without any decay the groups say nothing
    return Finding(
        status, _summary(pulls, probe.optimizer), _metrics(pulls, probe.optimizer),
        evidence=(*(_group_line(g) for g in shown), *_penalty_lines(pulls.penalty)),
        tables=(_table(shown),) if shown else (),
        fix=_fix(pulls) if status is not Status.PASS else None,
        codes=("dominates",) if status.is_problem else (),
    )


def _measure(ctx: Context, probe: StepProbe) -> Pulls:
    model = ctx.subject.fresh_model()  # the same weights the probe started from
    optimizer = training.make_optimizer(ctx, model)
    stepped = {p.name: p for p in probe.params}
    parameters = _parameters_by_group(model, optimizer, stepped)
    groups = [_group_pull(i, group, parameters[i], stepped, optimizer) for i, group in enumerate(optimizer.param_groups)]
    penalty = _explicit_penalty(ctx, [p for group in parameters for p in group], model)
    return Pulls(groups, penalty, _coupled_pull(groups, parameters, penalty), probe.loss)


def _metrics(pulls: Pulls, optimizer: str) -> dict[str, Any]:
    loss = pulls.regularization_loss
    return {
        "ratio": pulls.ratio, "gradient_ratio": pulls.gradient_ratio, "decoupled_step_ratio": pulls.decoupled_ratio,
        "loss_ratio": loss / pulls.data_loss if pulls.data_loss > 0 else None, "regularization_loss": loss,
        "data_loss": pulls.data_loss, "data_gradient": pulls.data_gradient,
        "explicit_penalty": pulls.penalty.value if pulls.penalty else None, "optimizer": optimizer,
    }


def _judge(ratio: float, thresholds: Mapping[str, Any]) -> Status:
    if not ratio < thresholds["ratio_fail"]:  # an infinite or NaN pull fails too
        return Status.FAIL
    if ratio >= thresholds["ratio_warn"]:
        return Status.WARN
    return Status.PASS


def _parameters_by_group(model: nn.Module, optimizer: torch.optim.Optimizer, stepped: dict[str, ParamStep]) -> list[list[tuple[str, nn.Parameter]]]:
    """(name, parameter) per optimizer group, only those that got a gradient: the optimizer skips a
    parameter whose .grad is None, weight decay included."""
    names = {id(p): name for name, p in model.named_parameters()}
    moved = {name for name, record in stepped.items() if record.grad_norm is not None}
    return [[(names[id(p)], p) for p in group["params"] if names.get(id(p)) in moved] for group in optimizer.param_groups]


def _group_pull(
    index: int, group: Mapping[str, Any], parameters: list[tuple[str, nn.Parameter]],
    stepped: dict[str, ParamStep], optimizer: torch.optim.Optimizer,
) -> GroupPull:
    records = [(stepped[name], p.numel()) for name, p in parameters]
    weight_decay = group.get("weight_decay", 0.0)
    return GroupPull(
        index=index,
        tensors=len(records),
        weights=sum(size for _, size in records),
        weight_decay=float(weight_decay) if isinstance(weight_decay, (int, float)) else 0.0,
        decoupled=bool(group.get("decoupled_weight_decay")) or isinstance(optimizer, DECOUPLED_OPTIMIZERS),
        squared_norm=sum(r.weight_norm ** 2 for r, _ in records),
        data_gradient=math.sqrt(sum(r.grad_norm ** 2 for r, _ in records)),
        first_step=math.sqrt(sum(size for r, size in records if r.has_gradient)),
    )


def _explicit_penalty(ctx: Context, parameters: list[tuple[str, nn.Parameter]], model: nn.Module) -> Penalty | None:
    if ctx.subject.extra_penalty is None:
        return None
    value = ctx.subject.extra_penalty(model)
    if not isinstance(value, torch.Tensor) or not value.requires_grad:
        return Penalty(float(value), {})  # a constant: it adds to the loss but pulls on nothing
    trainable = [(name, p) for name, p in parameters if p.requires_grad]
    grads = torch.autograd.grad(value, [p for _, p in trainable], allow_unused=True)
    return Penalty(float(value.detach()), {name: g for (name, _), g in zip(trainable, grads) if g is not None})


def _coupled_pull(groups: list[GroupPull], parameters: list[list[tuple[str, nn.Parameter]]], penalty: Penalty | None) -> float:
    """||wd*w + grad(penalty)|| over all parameters: what L2 decay and the explicit penalty add to
    the gradient together (decoupled decay adds nothing to it)."""
    pulls = dict(penalty.gradients) if penalty else {}
    for group, named in zip(groups, parameters):
        if group.decoupled or group.weight_decay == 0:
            continue
        for name, p in named:
            pulls[name] = pulls.get(name, 0.0) + group.weight_decay * p.detach()
    return math.sqrt(sum(float(pull.double().pow(2).sum()) for pull in pulls.values()))


def _summary(pulls: Pulls, optimizer: str) -> str:
    sources = [name for name, present in (
        ("weight-decay", any(not g.decoupled for g in pulls.decayed)), ("regularization()", pulls.penalty is not None),
    ) if present]
    parts = []
    if sources:
        loss = pulls.regularization_loss
        share = f" = {loss / pulls.data_loss:.2g}x the data loss {pulls.data_loss:.3g}" if pulls.data_loss > 0 else ""
        parts.append(
            f"the {' plus '.join(sources)} gradient is {pulls.gradient_ratio:.2g}x the data gradient at init "
            f"(regularization loss {loss:.3g}{share})"
        )
    if any(g.decoupled for g in pulls.decayed):
        parts.append(f"{optimizer}'s decoupled decay step is {pulls.decoupled_ratio:.2g}x its first data step")
    return "; ".join(parts)


def _group_line(g: GroupPull) -> str:
    scope = f"group {g.index}: weight_decay {g.weight_decay:g} on {g.tensors} tensors ({g.weights:,} weights)"
    if g.weight_decay == 0:
        return f"{scope}: no decay"
    if g.decoupled:
        return (
            f"{scope}, decoupled: decay step lr x {g.decay_pull:.3g} against the first step "
            f"lr x {g.first_step:.3g} ({_times(g.ratio)})"
        )
    return (
        f"{scope}: L2 penalty 0.5·wd·Σw² = {g.penalty:.3g}; its gradient {g.decay_pull:.3g} "
        f"against the data gradient {g.data_gradient:.3g} ({_times(g.ratio)})"
    )


def _penalty_lines(penalty: Penalty | None) -> tuple[str, ...]:
    if penalty is None:
        return ()
    norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in penalty.gradients.values()))
    return (f"regularization(model) = {penalty.value:.3g}, its gradient {norm:.3g}",)


def _times(ratio: float | None) -> str:
    return f"{ratio:.2g}x" if ratio is not None else "no data gradient"


def _table(groups: list[GroupPull]) -> Table:
    rows = tuple(
        (g.index, "decoupled" if g.decoupled else "L2", g.weight_decay, g.tensors, g.weights, g.squared_norm,
         g.penalty, g.decay_pull, g.data_pull, g.ratio)
        for g in groups
    )
    columns = ("group", "decay", "weight decay", "tensors", "weights", "Σw²", "L2 penalty", "decay pull", "data pull", "ratio")
    return Table("Weight decay per parameter group at init", columns, rows)


def _fix(pulls: Pulls) -> str:
    """Every pull scales linearly with its strength: scale them all to TARGET_RATIO."""
    scale = TARGET_RATIO / pulls.ratio if math.isfinite(pulls.ratio) else 0.0
    steps = [f"weight_decay from {wd:g} to about {wd * scale:.1g}" for wd in sorted({g.weight_decay for g in pulls.decayed}, reverse=True)]
    if pulls.penalty is not None and scale > 0:
        steps.append(f"the regularization() strength by about {1 / scale:.0f}x")
    return (
        f"Lower {' and '.join(steps)}, so that the regularization pulls on the weights about {TARGET_RATIO:g}x "
        f"as hard as the data does at init; or start from smaller weights."
    )
