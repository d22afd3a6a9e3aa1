"""Short training runs on copies of the model, shared by the training-based checks.

``fit`` runs full-batch steps of the user's loss and optimizer, records the loss curve, stops
early when the caller's goal is reached, and stops at the first non-finite loss. When the loss or
a gradient turns NaN/Inf it finds where (``locate_nonfinite``) and returns the event in the
curve, which is what the numerics check reads from the runs it relies on.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor import batching
from nndoctor.context import Context, NonFiniteEvent
from nndoctor.probes.head import module_stack, op_name
from nndoctor.tokens import TokenObjective, is_token_batch


@dataclass(frozen=True)
class Curve:
    losses: tuple[float, ...]  # loss before each step, then the loss after the last step
    accuracies: tuple[float, ...]  # classification/binary: accuracy at the same points
    reached_goal: bool
    nonfinite_step: int | None = None
    # The first update's predicted change of the loss, to first order (gradient . update): negative
    # for any optimizer that descends; positive means it climbs the loss (maximize=True, a sign
    # error in a hand-written optimizer). Measured only when fit(..., measure_first_step=True).
    first_step_change: float | None = None
    nonfinite: NonFiniteEvent | None = None  # where the first NaN/Inf of the run came from

    @property
    def initial(self) -> float:
        return self.losses[0]

    @property
    def final(self) -> float:
        return self.losses[-1]

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


def accuracy(task: str, output: torch.Tensor, target: Any, objective: TokenObjective | None = None) -> float | None:
    """Share of correct predictions for classification-type tasks, else None. A token objective
    is scored where its loss is: each position against its (shifted) label, ignored ones left out."""
    if not isinstance(target, torch.Tensor):
        return None
    with torch.no_grad():
        if objective is not None and is_token_batch(output, target):
            logits, labels = objective.align(output, target)
            return float((logits.argmax(-1) == labels).float().mean()) if labels.numel() else None
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


DROPPING = (nn.modules.dropout._DropoutNd, nn.MultiheadAttention, nn.RNNBase)


def without_regularization(model: nn.Module) -> nn.Module:
    """Dropout off, for runs that must be able to memorize (the model is a copy). Attention and
    stacked RNNs keep their dropout as a float attribute rather than a module: zeroed too."""
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        elif isinstance(module, (nn.MultiheadAttention, nn.RNNBase)):
            module.dropout = 0.0
    return model


@contextlib.contextmanager
def dropout_off(model: nn.Module) -> Iterator[None]:
    """Dropout layers, and the modules that apply dropout themselves (attention, stacked RNNs), in
    eval mode for the duration; put back in train mode afterwards. For measuring a model in train
    mode (normalization layers on batch statistics) without the noise of dropout."""
    switched = [m for m in model.modules() if isinstance(m, DROPPING) and m.training]
    try:
        for module in switched:
            module.eval()
        yield
    finally:
        for module in switched:
            module.train()


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
    measure_first_step: bool = False,
    batch_size: int | None = None,
    out_of_reach: Callable[[Sequence[float]], bool] | None = None,
) -> Curve:
    """Full-batch training for up to ``steps`` steps; stops when ``goal(loss, accuracy)`` holds
    (checked every ``check_every`` steps) or the loss turns non-finite. The first non-finite loss
    or gradient of the run is located and returned as the curve's ``nonfinite`` event. With
    ``measure_first_step`` the curve also says whether the first update went downhill. With
    ``batch_size`` each step trains on the next mini-batch instead (``minibatches``), and the
    curve holds mini-batch losses. ``out_of_reach(losses)`` (checked every 50 steps) ends a run
    whose goal it judges out of reach before the budget is spent."""
    subject = ctx.subject
    losses: list[float] = []
    accuracies: list[float] = []
    first_change = None
    event = None  # the run's first NaN/Inf, located
    model.train()
    for step, (step_inputs, step_targets) in zip(range(steps + 1), minibatches(inputs, targets, batch_size)):
        output = subject.predict(model, step_inputs)
        loss = subject.compute_loss(output, step_targets)
        value = float(loss.detach())
        losses.append(value)
        acc = accuracy(subject.task, output, step_targets, subject.token_objective)
        if acc is not None:
            accuracies.append(acc)
        if not math.isfinite(value):
            event = event or nonfinite_event(ctx, model, step_inputs, step_targets, phase, step)
            return Curve(tuple(losses), tuple(accuracies), False, step, first_change, event)
        if goal is not None and step % check_every == 0 and goal(value, acc):
            return Curve(tuple(losses), tuple(accuracies), True, first_step_change=first_change, nonfinite=event)
        if step == steps or (out_of_reach is not None and step % 50 == 0 and out_of_reach(losses)):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if event is None and not gradients_finite(model):  # a finite loss can hide NaN gradients (sqrt at 0)
            # what breaks next (NaN weights, then the loss) follows from this
            event = nonfinite_event(ctx, model, step_inputs, step_targets, phase, step, seen="gradient")
        if measure_first_step and step == 0:
            first_change = _step_and_measure(model, optimizer)
        else:
            optimizer.step()
    return Curve(tuple(losses), tuple(accuracies), False, first_step_change=first_change, nonfinite=event)


def minibatches(inputs: Any, targets: Any, batch_size: int | None) -> Iterator[tuple[Any, Any]]:
    """The whole batch at every step; or, with ``batch_size``, consecutive mini-batches of a fresh
    shuffle each epoch, the last incomplete one dropped (a DataLoader with shuffle and drop_last).
    The shuffle draws from torch's global RNG: the caller seeds it."""
    size = batching.batch_size_of(inputs)
    if batch_size is None or batch_size >= size:
        yield from itertools.repeat((inputs, targets))
        return
    while True:
        order = torch.randperm(size)
        for start in range(0, size - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            yield batching.take(inputs, rows), batching.take(targets, rows)


def _step_and_measure(model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
    """Take one optimizer step and return gradient . (change of the parameters): the loss change
    the step predicts to first order (the gradients are still those of the loss before it).

    Computed as g.w_after - g.w_before, one tensor at a time in float64 (products of float32
    values are exact there, so the difference keeps its sign even for tiny steps), instead of
    keeping a copy of every weight across the step: that copy would be the largest allocation of
    the whole run on a big model."""
    trained = [p for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
    before = _gradient_dot_weights(trained)
    optimizer.step()
    return _gradient_dot_weights(trained) - before


def _gradient_dot_weights(parameters: list[nn.Parameter]) -> float:
    with torch.no_grad():
        return sum(float((p.grad.double() * p.double()).sum()) for p in parameters)


class Origin(NamedTuple):
    """Where a NaN/Inf came from (the fields of a NonFiniteEvent without phase and step)."""

    where: str
    kind: str
    op: str = ""


def gradients_finite(model: nn.Module) -> bool:
    """Whether every gradient the model holds is finite: one reduction per parameter and a single
    synchronisation, cheap enough to run after every backward pass."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    return bool(torch.stack([_stored_values(g).isfinite().all() for g in grads]).all())


def _stored_values(t: torch.Tensor) -> torch.Tensor:
    return t.coalesce().values() if t.is_sparse else t


def _nonfinite(value: Any) -> bool:
    return any(not bool(torch.isfinite(t).all()) for t in _float_tensors(value))


def _float_tensors(value: Any) -> Iterator[torch.Tensor]:
    for item in _flatten(value):
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            yield _stored_values(item)


def _special_values(value: Any) -> set[str]:
    """Which of "nan" and "inf" the float tensors and Python floats in ``value`` hold."""
    found = set()
    for tensor in _float_tensors(value):
        if bool(tensor.isnan().any()):
            found.add("nan")
        if bool(tensor.isinf().any()):
            found.add("inf")
    for number in _flatten(value):
        if isinstance(number, float) and not math.isfinite(number):
            found.add("nan" if math.isnan(number) else "inf")
    return found


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    else:
        yield value


# Calls whose output is uninitialised memory: whatever it holds is not a value anyone computed.
UNINITIALISED = frozenset({"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"})


class _FirstNonFinite(TorchFunctionMode):
    """Watches every torch call of a forward pass and of the loss. Remembers the first call whose
    output holds a NaN or Inf that none of its arguments held: the call that created it (an Inf
    written on purpose, as in ``masked_fill(mask, float("-inf"))``, comes in as an argument and
    does not count). Also remembers which call, in which module, made each autograd node, so that
    a gradient that breaks later can be named the same way."""

    def __init__(self, running: list[tuple[str, nn.Module]], model_name: str):
        super().__init__()
        self.running = running  # the modules executing, innermost last (probes.head.module_stack)
        self.model_name = model_name
        self.in_loss = False
        self.first: Origin | None = None
        self.owners: dict[Any, Origin] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        watching = self.first is None
        before = _special_values((args, kwargs)) if watching else set()  # before an in-place op overwrites them
        result = func(*args, **kwargs)
        name = op_name(func)
        origin = Origin(self._place(), "loss" if self.in_loss else "output", name)
        for tensor in _float_tensors(result):
            if tensor.grad_fn is not None:
                self.owners.setdefault(tensor.grad_fn, origin)
        if watching and name not in UNINITIALISED and _special_values(result) - before:
            self.first = origin
        return result

    def _place(self) -> str:
        if self.in_loss:
            return "loss"
        if not self.running:
            return self.model_name
        path, module = self.running[-1]
        return path or type(module).__name__


@contextlib.contextmanager
def _first_broken_gradient(loss: torch.Tensor, owners: dict[Any, Origin]) -> Iterator[list[Origin]]:
    """Hooks on every autograd node behind ``loss`` that catch the first one (in backward order)
    to turn finite incoming gradients into non-finite outgoing ones: sqrt'(0), 0 * inf, a log's
    1/0. The hooks are on the graph, not on modules, so in-place ops cannot upset them; they go
    when the block ends."""
    found: list[Origin] = []
    with contextlib.ExitStack() as hooks:
        for node, owner in _graph(loss.grad_fn, owners):

            def check(grad_inputs, grad_outputs, node=node, owner=owner):
                if not found and _nonfinite(grad_inputs) and not _nonfinite(grad_outputs):
                    found.append(Origin(owner.where, "gradient", owner.op or node.name()))

            hooks.enter_context(node.register_hook(check))
        yield found


def _graph(root: Any, owners: dict[Any, Origin]) -> Iterator[tuple[Any, Origin]]:
    """Every autograd node behind ``root`` once, with the torch call it belongs to: its own, or
    the call it was reached from (the nodes inside ``cross_entropy`` sit behind its output)."""
    start = owners.get(root, Origin("loss", "gradient"))
    queue, seen = collections.deque([(root, start)]), {root}
    while queue:
        node, owner = queue.popleft()
        yield node, owner
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                queue.append((child, owners.get(child, owner)))


def locate_nonfinite(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> Origin | None:
    """Where the first NaN/Inf of a forward and backward pass of ``model`` on the batch comes
    from, in this order: a parameter, the data, the first torch call (in execution order) that
    created one in the forward pass or the loss, the first autograd node that created one in the
    backward pass. None if the pass is finite. Runs on a copy: the caller's model, its gradients
    and its normalization statistics are left alone."""
    for name, param in model.named_parameters():
        if _nonfinite(param.detach()):
            return Origin(name, "parameter")
    for where, value in (("input", inputs), ("target", targets)):
        if _nonfinite(value):
            return Origin(where, "input")
    try:
        return _replay(ctx, copy.deepcopy(model), inputs, targets)
    except RuntimeError:  # the copy or the instrumented replay failed where training did not: no origin, no crash
        return None


def _replay(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> Origin | None:
    model.zero_grad(set_to_none=True)
    with module_stack(model) as running, _FirstNonFinite(running, type(model).__name__) as recorder:
        output = ctx.subject.predict(model, inputs)
        recorder.in_loss = True
        loss = ctx.subject.compute_loss(output, targets)
    if recorder.first is not None:
        return recorder.first
    if _nonfinite(loss):
        return Origin("loss", "loss")
    if not loss.requires_grad:
        return None
    with _first_broken_gradient(loss, recorder.owners) as found:
        loss.backward()
    if found:
        return found[0]
    broken = next((name for name, p in model.named_parameters() if p.grad is not None and _nonfinite(p.grad)), None)
    return Origin(broken, "gradient") if broken else None


def nonfinite_event(
    ctx: Context, model: nn.Module, inputs: Any, targets: Any, phase: str, step: int, seen: str = "loss"
) -> NonFiniteEvent:
    """The event for a NaN/Inf that training met, located; ``seen`` is where it was noticed
    ("loss" or "gradient"), which is all the event says when the replay cannot find its origin."""
    origin = locate_nonfinite(ctx, model, inputs, targets) or Origin("unknown", seen)
    return NonFiniteEvent(phase, step, *origin)


def first_batch_size(inputs: Any) -> int:
    return batching.batch_size_of(inputs)
