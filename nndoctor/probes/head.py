"""The model's output head as it is actually computed, and what the loss does with it first.

One forward pass of a model copy runs under a ``TorchFunctionMode`` that records every torch call
(module activations such as ``nn.Softmax`` and functional ones such as ``torch.relu(x)`` or
``x.sigmoid()`` alike) with the module it ran in. Walking back from the returned tensor through
operations that only reshape, cast, clamp or scale it by a constant finds the *head*: the
operation that really produced the prediction, and the range it confines the prediction to.
The loss is then called on that output under a second mode, which records the first operations
that consume the output (``cross_entropy``, ``nll_loss``, ``log``, ...): what the loss expects.
"""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor.context import Context

BATCH = 64
INF = math.inf

# Output range of each activation with its default parameters, as named by op_name().
ACTIVATION_RANGES: dict[str, tuple[float, float]] = {
    "softmax": (0.0, 1.0),
    "softmin": (0.0, 1.0),
    "log_softmax": (-INF, 0.0),
    "sigmoid": (0.0, 1.0),
    "hardsigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),  # also nn.ReLU6, with min_val/max_val given
    "relu": (0.0, INF),
    "softplus": (0.0, INF),
    "elu": (-1.0, INF),
    "celu": (-1.0, INF),
    "selu": (-1.7581, INF),
    "gelu": (-0.17, INF),
    "silu": (-0.2785, INF),
    "mish": (-0.3088, INF),
    "log_sigmoid": (-INF, 0.0),
    "leaky_relu": (-INF, INF),
    "prelu": (-INF, INF),
    "rrelu": (-INF, INF),
}
ALIASES = {"special_expit": "sigmoid", "clip": "clamp", "multiply": "mul", "divide": "div", "true_divide": "div",
           "subtract": "sub", "negative": "neg", "__rsub__": "rsub"}

# Operations that change neither values nor range: looked through on the way back to the head.
SHAPE_OPS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "contiguous",
    "permute", "transpose", "t", "T", "mT", "movedim", "moveaxis", "swapaxes", "swapdims", "__getitem__", "select",
    "narrow", "expand", "expand_as", "clone", "detach", "to", "float", "double", "half", "bfloat16", "type",
    "type_as", "cpu", "cuda", "chunk", "split", "tensor_split", "unbind", "data",
})
CLAMP_OPS = frozenset({"clamp", "clamp_min", "clamp_max"})
# Arithmetic with a Python number: looked through, moving the range along.
SCALAR_OPS = frozenset({"mul", "div", "add", "sub", "rsub"})
# In a loss, picking the output's entries for the target classes ((out * one_hot).sum(1),
# out.gather(1, y)) still hands the loss the prediction itself.
SELECTION_OPS = frozenset({"gather", "index_select", "take_along_dim", "masked_select", "mul", "sum"})


@dataclass(frozen=True, eq=False)
class OpRecord:
    """One torch call seen during the forward pass."""

    name: str  # normalized: "softmax", "relu", "linear", "mul", ...
    call: str  # as written: "F.softmax", "torch.relu", "Tensor.sigmoid"
    module_path: str  # the innermost module running when it was called ("" for the root)
    module_type: str
    in_leaf_module: bool  # called by a module without children (nn.Softmax, nn.Linear)
    numbers: tuple[float | None, ...] = ()  # Python numbers among the positional arguments
    keywords: tuple[tuple[str, float | None], ...] = ()  # numeric keyword arguments
    source: OpRecord | None = field(default=None, repr=False)  # producer of its first tensor argument

    @property
    def where(self) -> str:
        """'head.2 (Softmax)' for a layer, 'F.softmax() in Net.forward' for a call in forward."""
        if self.in_leaf_module and self.module_path:
            return f"{self.module_path} ({self.module_type})"
        owner = f"{self.module_path} ({self.module_type})" if self.module_path else self.module_type
        return f"{self.call}() in {owner}.forward"

    @property
    def scalar(self) -> float | None:
        return next((n for n in self.numbers if n is not None), None)

    def keyword(self, key: str, position: int) -> float | None:
        value = dict(self.keywords).get(key)
        if value is None and position < len(self.numbers):
            value = self.numbers[position]
        return value

    @property
    def passes_through(self) -> bool:
        return hands_on(self.name, self.scalar is not None)

    def apply_to(self, bounds: tuple[float, float]) -> tuple[float, float]:
        """The range of this op's output given the range of its input."""
        low, high = bounds
        if self.name in CLAMP_OPS:
            floor, ceiling = self._clamp_limits()
            return max(low, -INF if floor is None else floor), min(high, INF if ceiling is None else ceiling)
        if self.name == "neg":
            return -high, -low
        c = self.scalar
        if self.name not in SCALAR_OPS or c is None:
            return bounds
        if self.name == "add":
            return low + c, high + c
        if self.name == "sub":
            return low - c, high - c
        if self.name == "rsub":
            return c - high, c - low
        if self.name == "mul":
            return (0.0, 0.0) if c == 0 else _ordered(low * c, high * c)
        return _ordered(low / c, high / c) if c != 0 else (-INF, INF)

    def _clamp_limits(self) -> tuple[float | None, float | None]:
        if self.name == "clamp_min":
            return self.keyword("min", 0), None
        if self.name == "clamp_max":
            return None, self.keyword("max", 0)
        return self.keyword("min", 0), self.keyword("max", 1)


def _ordered(a: float, b: float) -> tuple[float, float]:
    return (a, b) if a <= b else (b, a)


def hands_on(name: str, with_scalar: bool) -> bool:
    """Whether an op passes its input on unchanged up to a reshape, clamp or constant scaling."""
    if name in SHAPE_OPS or name in CLAMP_OPS or name == "neg":
        return True
    return name in SCALAR_OPS and with_scalar


class LossUse(NamedTuple):
    """An op the loss applied to the prediction, and the shape of the piece it was given (after
    the loss's own reshapes: a language model's (B, T, V) output reaches cross_entropy as (B*T, V))."""

    op: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class HeadTrace:
    output: torch.Tensor  # the prediction on the batch (detached)
    head: OpRecord | None  # the op that produced the prediction, None if no torch call did
    path: tuple[OpRecord, ...]  # the looked-through ops from the head to the output, in order
    ranges: tuple[tuple[float, float], ...]  # the output's range after the head and each op of path
    loss_uses: tuple[LossUse, ...]  # ops the loss applied directly to the output, in call order
    loss_error: str | None = None  # the loss raised (e.g. labels out of range): see data_integrity

    @property
    def bounds(self) -> tuple[float, float]:
        """The range the head and path confine the prediction to ((-inf, inf) for a linear head)."""
        return self.ranges[-1]

    @property
    def limiter(self) -> OpRecord | None:
        """The first op from the head on that confines the prediction on some side (a clamp after a
        Linear layer, or the head activation itself)."""
        ops = (self.head, *self.path) if self.head is not None else ()
        return next((op for op, r in zip(ops, self.ranges) if math.isfinite(r[0]) or math.isfinite(r[1])), None)

    @property
    def scaled(self) -> bool:
        """A constant factor or offset after the head: a deliberate range (tanh(x) * 5), not a slip."""
        return any(op.name in SCALAR_OPS or op.name == "neg" for op in self.path)


def op_name(func: Any) -> str:
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a property such as Tensor.T
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    if name.endswith("_") and not name.endswith("__"):  # in-place variant: relu_ is relu
        name = name[:-1]
    return ALIASES.get(name, name)


def _call_name(func: Any, name: str) -> str:
    module = getattr(func, "__module__", None) or ""
    if module.startswith(("torch.nn", "torch._C._nn")):
        return f"F.{name}"
    if getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{name}"
    return f"torch.{name}"


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple)):
            found = next((v for v in value if isinstance(v, torch.Tensor)), None)
            if found is not None:
                return found
    return None


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


class _ForwardRecorder(TorchFunctionMode):
    """Remembers, for every tensor a torch call returns, the record of that call. Entries hold a
    weak reference so that a freed tensor's id reused by a later tensor is never mistaken for it."""

    def __init__(self, modules: list[tuple[str, nn.Module]]):
        super().__init__()
        self.modules = modules  # the stack of modules running, innermost last
        self.producers: dict[int, tuple[weakref.ref, OpRecord]] = {}

    def producer(self, tensor: torch.Tensor | None) -> OpRecord | None:
        entry = self.producers.get(id(tensor)) if tensor is not None else None
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        source = self.producer(_first_tensor(args, kwargs))  # before an in-place op replaces it
        result = func(*args, **kwargs)
        tensors = _tensors(result)
        if tensors:
            record = self._record(func, args, kwargs, source)
            for tensor in tensors:
                self.producers[id(tensor)] = (weakref.ref(tensor), record)
        return result

    def _record(self, func, args: tuple, kwargs: dict, source: OpRecord | None) -> OpRecord:
        path, module = self.modules[-1] if self.modules else ("", None)
        name = op_name(func)
        return OpRecord(
            name=name,
            call=_call_name(func, name),
            module_path=path,
            module_type=type(module).__name__ if module is not None else "model",
            in_leaf_module=module is not None and next(module.children(), None) is None,
            numbers=tuple(a for a in args[1:] if _is_number(a)),
            keywords=tuple((k, v) for k, v in kwargs.items() if _is_number(v)),
            source=source,
        )


class _ConsumerRecorder(TorchFunctionMode):
    """Records the ops that take the output (or a reshaped, clamped, scaled or selected piece of
    it) as an argument: what the loss does with the prediction."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.derived: dict[int, torch.Tensor] = {id(output): output}  # strong refs: ids stay unique
        self.uses: list[LossUse] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        piece = next((t for t in _tensors([*args, *kwargs.values()]) if self.derived.get(id(t)) is t), None)
        with_scalar = any(a is not None and _is_number(a) for a in args[1:])
        passes = hands_on(name, with_scalar) or name in SELECTION_OPS
        consumed = piece is not None and not passes
        if consumed:
            self.uses.append(LossUse(name, tuple(piece.shape)))  # before the call: a loss that raises still shows its intent
        result = func(*args, **kwargs)
        tensors = _tensors(result)
        if piece is not None and passes:
            self.derived.update((id(t), t) for t in tensors)
        elif consumed and not tensors:  # size(), dim(), shape: metadata, not a use of the values
            self.uses.pop()
        return result


@contextlib.contextmanager
def module_stack(model: nn.Module) -> Iterator[list[tuple[str, nn.Module]]]:
    """(path, module) of the modules currently running, innermost last; hooks always removed."""
    running: list[tuple[str, nn.Module]] = []

    def enter(module, args, path):
        running.append((path, module))

    def leave(module, args, output):
        running.pop()  # returns None: a hook's return value would replace the module's output

    with contextlib.ExitStack() as hooks:
        for path, module in model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):  # takes no hooks; its ops go unseen anyway
                continue
            hooks.enter_context(module.register_forward_pre_hook(functools.partial(enter, path=path)))
            hooks.enter_context(module.register_forward_hook(leave, always_call=True))
        yield running


def _walk_back(record: OpRecord | None) -> tuple[OpRecord | None, tuple[OpRecord, ...]]:
    """(the first op behind ``record`` that does more than reshape, clamp or scale, the ops passed
    on the way in forward order)."""
    path: list[OpRecord] = []
    while record is not None and record.passes_through:
        path.append(record)
        record = record.source
    return record, tuple(reversed(path))


def _ranges(head: OpRecord | None, path: tuple[OpRecord, ...]) -> tuple[tuple[float, float], ...]:
    """The range the output is confined to after the head and after each op of the path."""
    bounds = ACTIVATION_RANGES.get(head.name, (-INF, INF)) if head is not None else (-INF, INF)
    if head is not None and head.name == "hardtanh":
        low, high = head.keyword("min_val", 0), head.keyword("max_val", 1)
        bounds = (-1.0 if low is None else low, 1.0 if high is None else high)
    ranges = [bounds]
    for op in path:
        ranges.append(op.apply_to(ranges[-1]))
    return tuple(ranges)


def producer_behind(record: OpRecord | None) -> OpRecord | None:
    """The op that produced ``record``'s input, looking through reshapes, clamps and constants
    (what ``log`` was taken of in ``torch.log(probs + 1e-8)``)."""
    return _walk_back(record.source)[0] if record is not None else None


def _loss_uses(ctx: Context, output: torch.Tensor, targets: Any) -> tuple[tuple[LossUse, ...], str | None]:
    recorder = _ConsumerRecorder(output)
    try:
        with torch.no_grad(), recorder:
            ctx.subject.compute_loss(output, targets)
    except Exception as exc:  # the loader lets through a loss that rejects bad labels; report, go on
        return tuple(recorder.uses), f"{type(exc).__name__}: {exc}"
    return tuple(recorder.uses), None


def head_trace(ctx: Context) -> HeadTrace:
    inputs, targets = ctx.batch(BATCH)
    model = ctx.subject.fresh_model()  # train mode: the output the loss sees while training
    ctx.seed_everything()
    with torch.no_grad(), module_stack(model) as running, _ForwardRecorder(running) as recorder:
        output = ctx.subject.predict(model, inputs)
    head, path = _walk_back(recorder.producer(output))
    uses, loss_error = _loss_uses(ctx, output, targets)
    return HeadTrace(output.detach(), head, path, _ranges(head, path), uses, loss_error)
