"""Short training runs on copies of the model, shared by the training-based checks.

``fit`` runs full-batch steps of the user's loss and optimizer, records the loss curve, stops
early when the caller's goal is reached, and stops at the first non-finite loss. When something
turns NaN/Inf it finds where (``locate_nonfinite``) and records it on the Context, which is what
the numerics check reads: every pass a check runs is watched this way.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from nndoctor import batching
from nndoctor.context import Context, NonFiniteEvent


@dataclass(frozen=True)
class Curve:
    losses: tuple[float, ...]  # loss before each step, then the loss after the last step
    accuracies: tuple[float, ...]  # classification/binary: accuracy at the same points
    reached_goal: bool
    nonfinite_step: int | None = None

    @property
    def initial(self) -> float:
        return self.losses[0]

    @property
    def final(self) -> float:
        return self.losses[-1]

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


def accuracy(task: str, output: torch.Tensor, target: Any) -> float | None:
    """Share of correct predictions for classification-type tasks, else None."""
    if not isinstance(target, torch.Tensor):
        return None
    with torch.no_grad():
        if task == "classification":
            logits = output.reshape(-1, output.shape[-1]) if output.dim() > 1 else output
            labels = target.reshape(-1) if not target.is_floating_point() else target.reshape(-1, target.shape[-1]).argmax(-1)
            if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
                return None
            return float((logits.argmax(-1) == labels).float().mean())
        if task in ("binary", "multilabel"):
            if output.numel() != target.numel():
                return None
            # Probabilities (a BCELoss head) are judged at 0.5, logits at 0.
            probabilities = bool(((output >= 0) & (output <= 1)).all())
            predicted = output > (0.5 if probabilities else 0.0)
            return float((predicted.reshape(-1) == (target.reshape(-1) > 0.5)).float().mean())
    return None


def without_regularization(model: nn.Module) -> nn.Module:
    """Dropout off, for runs that must be able to memorize (the model is a copy)."""
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
    return model


def make_optimizer(ctx: Context, model: nn.Module, weight_decay: bool = True, lr: float | None = None):
    optimizer = ctx.subject.make_optimizer(model.parameters())
    for group in optimizer.param_groups:
        if not weight_decay and "weight_decay" in group:
            group["weight_decay"] = 0.0
        if lr is not None:
            group["lr"] = lr
    return optimizer


def configured_lr(ctx: Context) -> float | None:
    probe = nn.Linear(1, 1)
    optimizer = ctx.subject.make_optimizer(probe.parameters())
    lr = optimizer.param_groups[0].get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def fit(
    ctx: Context,
    model: nn.Module,
    inputs: Any,
    targets: Any,
    steps: int,
    optimizer: torch.optim.Optimizer,
    phase: str,
    goal: Callable[[float, float | None], bool] | None = None,
    check_every: int = 1,
) -> Curve:
    """Full-batch training for up to ``steps`` steps; stops when ``goal(loss, accuracy)`` holds
    (checked every ``check_every`` steps) or the loss turns non-finite."""
    subject = ctx.subject
    losses: list[float] = []
    accuracies: list[float] = []
    model.train()
    for step in range(steps + 1):
        output = subject.predict(model, inputs)
        loss = subject.compute_loss(output, targets)
        value = float(loss.detach())
        losses.append(value)
        acc = accuracy(subject.task, output, targets)
        if acc is not None:
            accuracies.append(acc)
        if not math.isfinite(value):
            record_nonfinite(ctx, model, inputs, targets, phase, step)
            return Curve(tuple(losses), tuple(accuracies), False, step)
        if goal is not None and step % check_every == 0 and goal(value, acc):
            return Curve(tuple(losses), tuple(accuracies), True)
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return Curve(tuple(losses), tuple(accuracies), False)


def _nonfinite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value).all())
    if isinstance(value, (list, tuple)):
        return any(_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    return False


@contextlib.contextmanager
def _hooks(model: nn.Module) -> Iterator[list[tuple[str, str]]]:
    """Forward and backward hooks that log (module path, kind) where a non-finite value appears,
    in execution order. Always removed."""
    seen: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        for name, module in model.named_modules():
            label = name or type(module).__name__

            def forward_hook(mod, args, output, label=label):
                if _nonfinite(output):
                    seen.append((label, "output"))

            def backward_hook(mod, grad_input, grad_output, label=label):
                if _nonfinite(grad_input):
                    seen.append((label, "gradient"))

            stack.enter_context(module.register_forward_hook(forward_hook))
            if next(module.children(), None) is None:  # full backward hooks on leaves only
                stack.enter_context(module.register_full_backward_hook(backward_hook))
        yield seen


def locate_nonfinite(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> tuple[str, str]:
    """(where, kind) of the first NaN/Inf in a forward and backward pass of ``model``."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param.detach()).all()):
            return name, "parameter"
    if _nonfinite(inputs):
        return "input", "input"
    probe = _detached_copy(model)
    with _hooks(probe) as seen:
        try:
            output = ctx.subject.predict(probe, inputs)
            if seen:
                return seen[0]
            loss = ctx.subject.compute_loss(output, targets)
            if _nonfinite(loss):
                grad_seen = _loss_input_gradient_nonfinite(ctx, output, targets)
                return "loss", "loss" if not grad_seen else "loss gradient"
            loss.backward()
        except RuntimeError:
            pass
    return (seen[0] if seen else ("unknown", "unknown"))


def _loss_input_gradient_nonfinite(ctx: Context, output: torch.Tensor, targets: Any) -> bool:
    probe = output.detach().requires_grad_(True)
    with contextlib.suppress(RuntimeError):
        ctx.subject.compute_loss(probe, targets).backward()
    return probe.grad is not None and _nonfinite(probe.grad)


def _detached_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def record_nonfinite(ctx: Context, model: nn.Module, inputs: Any, targets: Any, phase: str, step: int) -> NonFiniteEvent:
    where, kind = locate_nonfinite(ctx, model, inputs, targets)
    event = NonFiniteEvent(phase=phase, step=step, where=where, kind=kind)
    ctx.nonfinite.append(event)
    return event


def first_batch_size(inputs: Any) -> int:
    return batching.batch_size_of(inputs)
