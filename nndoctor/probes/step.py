"""One training step of the user's loss and optimizer on a real batch, recorded per parameter.

Shared by gradient_flow (which parameters get a gradient, how large across depth) and
update_ratio (how far the first optimizer step moves each weight). The step runs on a copy of the
model in train mode, with weight decay and every other optimizer setting as configured.

A parameter can get an all-zero gradient at the first step only because something downstream is
zero-initialized (a zero classifier head, Fixup's zero last layer of each residual branch): the
first step makes that layer non-zero and the gradient arrives one step later. So while some
trainable parameters are still without gradient, the probe keeps stepping as long as that set
shrinks; what remains when it stops shrinking never gets a gradient.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from nndoctor import training
from nndoctor.context import Context, NonFiniteEvent
from nndoctor.probes import cost
from nndoctor.probes.initial import BATCH  # the initial pass's: ctx.batch caches the batch

# A backward pass keeps every activation: large inputs (224x224 images) get a smaller batch, and
# so do compute-heavy models, whose activations grow with their FLOPs (a ViT-Tiny on 32x32 images:
# 256 samples held 3 GB for one backward pass; 32 within STEP_FLOPS). At least STEP_MIN samples.
INPUT_ELEMENTS = 4_000_000
STEP_FLOPS = 2.0e10
STEP_MIN = 32

# Each extra step can only hand the gradient one zero-initialized layer further down, and
# zero-init schemes stack at most a head and a branch layer, so a few steps settle it.
MAX_STEPS = 5

# Layers that rescale their input to a fixed scale (_NormBase: BatchNorm*, InstanceNorm*).
# LocalResponseNorm does not: with its k = 1 it leaves small inputs as they are.
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class ParamStep:
    """What one parameter tensor did in the step. Norms are Frobenius norms of the whole tensor."""

    name: str  # "encoder.layers.0.linear1.weight"
    module: str  # owning module path, "" for the model itself
    role: str  # "weight" (two or more axes longer than 1), "bias" (other 1-D/0-D), "norm" (norm-layer affine), "embedding"
    order: int  # position of the owning module in forward execution order
    called: bool  # the owning module itself ran in the forward pass
    requires_grad: bool
    in_optimizer: bool
    weight_norm: float  # before the step
    grad_norm: float | None  # None: the parameter got no gradient (grad is None)
    grad_mean_abs: float | None
    grad_max_abs: float | None
    grad_finite: bool
    update_norm: float  # ||w_after - w_before|| for the first step
    gradient_step: int | None  # first step (1-based) with a non-zero gradient; None: none within the probe

    @property
    def trainable(self) -> bool:
        return self.requires_grad and self.in_optimizer

    @property
    def has_gradient(self) -> bool:
        """A non-zero gradient at the first step."""
        return self.gradient_step == 1

    @property
    def relative_gradient(self) -> float | None:
        """||grad|| / ||w||, undefined for weights that are exactly zero."""
        if self.grad_norm is None or self.weight_norm == 0:
            return None
        return self.grad_norm / self.weight_norm

    @property
    def update_ratio(self) -> float | None:
        return self.update_norm / self.weight_norm if self.weight_norm > 0 else None


@dataclass(frozen=True)
class StepProbe:
    loss: float  # loss on the batch before the first step
    loss_after: float | None  # loss on the same batch (same dropout masks) after it; None: no step taken
    params: tuple[ParamStep, ...]  # in forward execution order
    passes: int  # backward passes run (1 unless gradients had to arrive through zero-initialized layers)
    optimizer: str  # e.g. "Adam"
    momentum: float  # SGD/RMSprop momentum of the first parameter group, 0 if none
    nonfinite: NonFiniteEvent | None = None  # where a NaN/Inf loss or gradient of the step came from

    @property
    def finite(self) -> bool:
        """Loss and gradients finite; otherwise no optimizer step was taken (see numerics)."""
        return math.isfinite(self.loss) and all(p.grad_finite for p in self.params)


def gradient_step(ctx: Context) -> StepProbe:
    """The step on a fresh copy of the model (through ctx.shared, so it runs once per run)."""
    inputs, targets = ctx.batch(step_batch_size(ctx))
    model = ctx.subject.fresh_model()
    optimizer = training.make_optimizer(ctx, model)
    named = list(model.named_parameters())
    ctx.seed_everything()
    with _execution_order(model) as order:
        loss = _backward(ctx, model, inputs, targets)
    grads = [_gradient_stats(p) for _, p in named]
    # The copy starts from the user's weights, which nothing changes: they serve as "before" the
    # step, parameter for parameter, without a snapshot of the copy (a whole model's worth of memory).
    before = [p.detach() for p in ctx.subject.model.parameters()]
    reached = {name: 1 for (name, _), g in zip(named, grads) if g.nonzero}
    updates, loss_after, passes, nonfinite = [0.0] * len(named), None, 1, None
    if math.isfinite(loss) and all(g.finite for g in grads):
        optimizer.step()
        updates = [_norm(p.detach() - b.to(p.device)) for (_, p), b in zip(named, before)]
        loss_after = _loss_after_step(ctx, model, inputs, targets)
        passes = _wait_for_late_gradients(ctx, model, optimizer, inputs, targets, named, reached)
    else:
        nonfinite = training.nonfinite_event(ctx, model, inputs, targets, "gradient step", 0)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    modules = dict(model.named_modules())
    records = []
    for (name, p), grad, weights, update in zip(named, grads, before, updates):
        path = name.rpartition(".")[0]
        records.append(ParamStep(
            name=name, module=path, role=parameter_role(modules[path], p),
            order=_position(path, order), called=path in order, requires_grad=p.requires_grad,
            in_optimizer=id(p) in held, weight_norm=_norm(weights), grad_norm=grad.norm,
            grad_mean_abs=grad.mean_abs, grad_max_abs=grad.max_abs, grad_finite=grad.finite,
            update_norm=update, gradient_step=reached.get(name),
        ))
    records.sort(key=lambda r: r.order)  # stable: registration order within one module
    return StepProbe(loss, loss_after, tuple(records), passes, type(optimizer).__name__, _momentum(optimizer), nonfinite)


def step_batch_size(ctx: Context) -> int:
    by_input = ctx.samples_within(INPUT_ELEMENTS, most=BATCH)
    return min(by_input, cost.samples_within_flops(ctx, STEP_FLOPS, most=BATCH, least=min(STEP_MIN, by_input)))


def _momentum(optimizer: torch.optim.Optimizer) -> float:
    momentum = optimizer.param_groups[0].get("momentum", 0.0)  # SGD, RMSprop; Adam has betas instead
    return float(momentum) if isinstance(momentum, (int, float)) else 0.0


def _loss_after_step(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> float:
    """The loss on the same batch after the step. Reseeding repeats the first pass's dropout masks
    and train-mode batch statistics depend on the batch only, so only the step changes the loss."""
    ctx.seed_everything()
    with torch.no_grad():
        return float(ctx.subject.compute_loss(ctx.subject.predict(model, inputs), targets))


def _backward(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> float:
    model.zero_grad(set_to_none=True)  # the model's, not the optimizer's: it may not hold them all
    loss = ctx.subject.compute_loss(ctx.subject.predict(model, inputs), targets)
    if loss.requires_grad:
        loss.backward()
    return float(loss.detach())


def _wait_for_late_gradients(ctx, model, optimizer, inputs, targets, named, reached: dict[str, int]) -> int:
    """Keep stepping while trainable parameters without gradient keep getting one; returns the
    number of backward passes run. ``reached`` gains the step at which each parameter got its
    gradient."""
    pending = {name for name, p in named if p.requires_grad and name not in reached}
    step = 1
    while pending and step < MAX_STEPS:
        step += 1
        loss = _backward(ctx, model, inputs, targets)
        arrived = {name for name, p in named if name in pending and _gradient_stats(p).nonzero}
        if not math.isfinite(loss) or not arrived:
            break  # the set stopped shrinking: what is left never gets a gradient
        reached.update((name, step) for name in arrived)
        pending -= arrived
        optimizer.step()
    return step


@dataclass(frozen=True)
class _Gradient:
    norm: float | None
    mean_abs: float | None
    max_abs: float | None
    finite: bool
    nonzero: bool


def _gradient_stats(p: torch.Tensor) -> _Gradient:
    if p.grad is None:
        return _Gradient(None, None, None, True, False)
    g = p.grad.detach()
    if g.is_sparse:  # sparse embeddings: only the rows seen in the batch are stored
        g = g.coalesce().values()
    if g.numel() == 0:
        return _Gradient(0.0, 0.0, 0.0, True, False)
    magnitude = g.abs()
    peak = float(magnitude.max())  # NaN if any element is NaN
    # NaN counts as non-zero: the gradient did arrive (finite=False reports it)
    return _Gradient(_norm(g, peak), float(magnitude.float().mean()), peak, math.isfinite(peak), peak != 0)


def _norm(t: torch.Tensor, peak: float | None = None) -> float:
    """Frobenius norm. The squares of tiny values (1e-24 in a vanishing gradient) underflow to 0
    in float32, and those of huge ones overflow: then the tensor is scaled by its peak first."""
    if t.numel() == 0:
        return 0.0
    norm = float(torch.linalg.vector_norm(t))
    if norm != 0 and not math.isinf(norm):
        return norm
    peak = float(t.abs().max()) if peak is None else peak
    if peak == 0 or not math.isfinite(peak):
        return peak
    return peak * float(torch.linalg.vector_norm(t / peak))


@contextlib.contextmanager
def _execution_order(model: nn.Module) -> Iterator[dict[str, int]]:
    """Module path -> position of its first call in the forward pass (hooks always removed)."""
    order: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for path, module in model.named_modules():
            def first_call(mod, args, path=path):
                order.setdefault(path, len(order))

            stack.enter_context(module.register_forward_pre_hook(first_call))
        yield order


def _position(path: str, order: dict[str, int]) -> int:
    """A module's call position, or its nearest called ancestor's: MultiheadAttention uses its
    out_proj weights without calling the out_proj module; unused modules sort with their parent."""
    while path not in order and path:
        path = path.rpartition(".")[0]
    return order.get(path, len(order))


def parameter_role(module: nn.Module, p: torch.Tensor) -> str:
    if isinstance(module, NORM_LAYERS):
        return "norm"
    if isinstance(module, EMBEDDINGS):
        return "embedding"
    # A weight matrix spans two real axes: a per-channel scale kept as (1, width) is a bias-like vector.
    return "weight" if sum(size > 1 for size in p.shape) >= 2 else "bias"
