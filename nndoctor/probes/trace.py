"""trace: one instrumented forward pass at initialization, with statistics per layer and per
activation, named by module path.

Layers are the leaf modules that hold parameters (Linear, Conv, Embedding, RNN, ...) plus the
normalization layers; forward hooks record their outputs. Activations are seen wherever they are
called: as modules (``nn.ReLU``) or as functions inside a ``forward`` (``torch.relu``, ``F.gelu``,
``x.clamp(min=0)``), through a ``TorchFunctionMode`` that sees every top-level torch call. A stack
of the modules currently executing (pushed and popped by forward pre/post hooks) names each call:
an activation module by its own path (``features.2``), a functional call by the module it runs in
and a counter (``block.3:relu#1``). An activation module calls its functional form internally
(``nn.ReLU`` calls ``F.relu``); that call is the module's, recorded once under the module's name.

Only reduced statistics are kept (a few numbers per layer, one value per unit), never the
activations themselves. A unit is a channel of a (B, C, H, W) convolution activation and the
last-dimension feature of a (B, D) or (B, L, D) one; "across the batch" means over every sample
and position of that unit.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor import batching
from nndoctor.context import Context

BATCH = 256
MIN_BATCH = 16
INPUT_ELEMENT_BUDGET = 1_000_000  # input elements per pass: 32x32 RGB images get 256 samples, 224x224 ones 16
# A unit is saturated when at least this share of its values is: most of the batch. A unit
# whose pre-activation is centred on zero always spends some samples in the linear zone (a tanh
# unit with pre-activation std 13 still does on 12% of them), so a stricter share would miss
# units that pass a small fraction of their gradient; sound networks keep pre-activation std
# near 1, where under 10% of a unit's values saturate.
SATURATED_SHARE = 0.5

# Layer roles. Stacked weight layers compound their scale; normalization layers reset it;
# embeddings start a fresh signal.
WEIGHT, NORM, EMBEDDING, OTHER = "weight", "norm", "embedding", "other"
WEIGHT_TYPES = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase)
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm)
EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)
# Layers whose unit axis is dim 1 (channels first); all others keep their units in the last dim.
CHANNELS_FIRST_TYPES = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LocalResponseNorm)

SATURATING_KINDS = ("tanh", "sigmoid")
# Activation functions by torch name (in-place variants end in "_"); ReLU-like clamps are
# classified by their arguments in ``activation_kind``.
NAMED_KINDS = {
    "relu": "relu", "relu6": "relu6", "tanh": "tanh", "sigmoid": "sigmoid", "special_expit": "sigmoid",
    "gelu": "gelu", "silu": "silu", "elu": "elu", "selu": "selu", "celu": "celu", "mish": "mish",
    "softplus": "softplus", "prelu": "prelu", "rrelu": "rrelu", "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid", "log_sigmoid": "logsigmoid", "softsign": "softsign",
    "softmax": "softmax", "log_softmax": "log_softmax",
}


@dataclass(frozen=True)
class LayerStats:
    name: str  # module path; "path#k" for the k-th call of a module called more than once
    kind: str  # class name: Linear, Conv2d, LayerNorm, ...
    role: str  # WEIGHT, NORM, EMBEDDING or OTHER
    shape: tuple[int, ...]
    mean: float
    std: float  # over every element of the output
    unit_std: float  # RMS over units of each unit's std across the batch: the input-driven signal
    weight_rms: float | None  # RMS of the module's ``weight`` (a norm layer's gain), if it has one


@dataclass(frozen=True)
class ActivationStats:
    name: str  # "features.2" for a module, "block.3:relu#1" for a functional call
    kind: str  # "relu", "relu6", "clamp", "leaky_relu", "tanh", "sigmoid", "gelu", "softmax", ...
    functional: bool
    shape: tuple[int, ...]
    input_mean: float
    input_std: float
    output_mean: float
    output_std: float
    positive_share: float  # share of pre-activation values above zero
    ever_active: torch.Tensor  # bool per unit: pre-activation above zero somewhere in the batch
    # tanh/sigmoid only, per unit: the |pre-activation| that SATURATED_SHARE of its values exceed
    saturation_floor: torch.Tensor | None
    is_output: bool = False  # its output is the model's prediction (the head's own activation)

    @property
    def units(self) -> int:
        return int(self.ever_active.numel())

    @property
    def dead_units(self) -> int:
        return int((~self.ever_active).sum())


class TraceUnavailable(Exception):
    """The model cannot be instrumented: a TorchScript model runs no Python hooks or calls."""


@dataclass(frozen=True)
class Trace:
    layers: tuple[LayerStats, ...]  # execution order
    activations: tuple[ActivationStats, ...]  # execution order
    batch_size: int
    dropout: tuple[str, ...]  # dropout modules that were active during the pass


def trace(ctx: Context) -> Trace:
    """The instrumented pass on a fresh copy of the model and a real batch (use ctx.shared)."""
    inputs, _ = ctx.batch(ctx.samples_within(INPUT_ELEMENT_BUDGET, most=BATCH, least=MIN_BATCH))
    model = ctx.subject.fresh_model()
    ctx.seed_everything()  # dropout draws the same masks on every run
    return trace_model(model, inputs, ctx.subject.predict)


def _predict(model: nn.Module, inputs: Any) -> torch.Tensor:
    return batching.select_output(batching.call_model(model, inputs))


def trace_model(model: nn.Module, inputs: Any, predict: Callable[[nn.Module, Any], torch.Tensor] = _predict) -> Trace:
    """Run ``predict(model, inputs)`` once in train mode, instrumented; every hook is removed and
    every module's mode restored afterwards.

    Train mode is what training sees: normalization layers use batch statistics (in eval mode at
    init, BatchNorm's running statistics are still 0 and 1, so it would not normalize at all, and
    TransformerEncoderLayer would take a fused path that hides its sublayers). Dropout stays on
    for the same reason; it rescales kept values by 1/(1-p), at most ~1.4x in std for p = 0.5,
    which is far inside the orders-of-magnitude thresholds, and cannot by itself keep a unit from
    ever being active across a whole batch.
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise TraceUnavailable("the model is a TorchScript module, whose forward cannot be instrumented")
    modes = {module: module.training for module in model.modules()}
    batch_size = batching.batch_size_of(inputs)
    recorder = _Recorder(batch_size)
    try:
        model.train()
        with torch.no_grad(), _instrumented(model, recorder):
            prediction = predict(model, inputs)
        return Trace(
            layers=tuple(recorder.layers),
            activations=recorder.finished_activations(prediction),
            batch_size=batch_size,
            dropout=tuple(
                name for name, module in model.named_modules()
                if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0
            ),
        )
    finally:
        for module, training in modes.items():
            module.train(training)


@contextlib.contextmanager
def _instrumented(model: nn.Module, recorder: "_Recorder") -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for path, module in model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):  # scripted parts take no hooks: seen as a whole
                continue
            stack.enter_context(module.register_forward_pre_hook(recorder.entering(path)))
            # always_call: a module whose forward raises still leaves the stack of running modules
            stack.enter_context(module.register_forward_hook(recorder.leaving, always_call=True))
        stack.enter_context(recorder)
        yield


def activation_kind(func: Callable, args: tuple, kwargs: dict) -> str | None:
    """The activation a torch call computes, or None if it is not one."""
    name = getattr(func, "__name__", "")
    base = name[:-1] if name.endswith("_") else name
    if base in ("clamp", "clip", "clamp_min", "hardtanh"):
        return _clamp_kind(base, args, kwargs)
    if base == "leaky_relu" and _argument(args, kwargs, 1, "negative_slope", 0.01) == 0:
        return "relu"
    if base == "leaky_relu":
        return "leaky_relu"
    return NAMED_KINDS.get(base)


def _clamp_kind(base: str, args: tuple, kwargs: dict) -> str | None:
    """clamp(min=0) is a ReLU, clamp(0, 6) and hardtanh(0, 6) a ReLU6; hardtanh(-1, 1) is itself."""
    lower_name, upper_name = ("min_val", "max_val") if base == "hardtanh" else ("min", "max")
    default_lower, default_upper = (-1.0, 1.0) if base == "hardtanh" else (None, None)
    lower = _argument(args, kwargs, 1, lower_name, default_lower)
    upper = None if base == "clamp_min" else _argument(args, kwargs, 2, upper_name, default_upper)
    if not isinstance(lower, (int, float)) or lower != 0:
        return "hardtanh" if base == "hardtanh" else None
    if upper is None:
        return "relu"
    return "relu6" if upper == 6 else "clamp"


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _is_activation_module(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation" and not isinstance(module, nn.MultiheadAttention)


def _role(module: nn.Module) -> str | None:
    """The layer role of a module the trace records, or None for modules it does not."""
    if isinstance(module, NORM_TYPES):
        return NORM
    if _is_activation_module(module) or next(module.children(), None) is not None:
        return None
    if next(module.parameters(recurse=False), None) is None:
        return None
    if isinstance(module, EMBEDDING_TYPES):
        return EMBEDDING
    return WEIGHT if isinstance(module, WEIGHT_TYPES) else OTHER


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The main output of a module: the tensor itself, or the first one of a tuple (RNN output)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value:
        return _first_tensor(value[0])
    return None


def _default_unit_axis(x: torch.Tensor) -> int | None:
    """Channels for 4-D/5-D conv activations, the last dimension for (B, D) and (B, L, D)."""
    if x.dim() >= 4:
        return 1
    return x.dim() - 1 if x.dim() >= 2 else None


def _other_dims(x: torch.Tensor, unit_axis: int | None) -> tuple[int, ...]:
    return tuple(d for d in range(x.dim()) if d != unit_axis)


@dataclass(frozen=True)
class _Moments:
    """Mean and variance of each unit over the samples and positions of the batch."""

    mean: torch.Tensor  # (units,)
    var: torch.Tensor  # (units,)

    @classmethod
    def of(cls, x: torch.Tensor, unit_axis: int | None) -> "_Moments":
        var, mean = torch.var_mean(x.detach().float(), dim=_other_dims(x, unit_axis), correction=0)
        return cls(mean.reshape(-1), var.reshape(-1))

    @property
    def overall_mean(self) -> float:
        return float(self.mean.mean())

    @property
    def overall_std(self) -> float:
        """The std of all values together: within-unit spread plus the spread of unit means."""
        return math.sqrt(max(float((self.var + self.mean.square()).mean()) - self.overall_mean**2, 0.0))

    @property
    def unit_std(self) -> float:
        return math.sqrt(float(self.var.mean()))


def _weight_rms(module: nn.Module) -> float | None:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.numel() == 0:
        return None
    return float(torch.linalg.vector_norm(weight.detach().float())) / math.sqrt(weight.numel())


@dataclass
class _Frame:
    """A module call in progress."""

    module: nn.Module
    name: str  # module path, with "#k" from its second call on
    activation_recorded: bool = False  # an activation module records its first call only


class _Recorder(TorchFunctionMode):
    """Collects layer statistics from module hooks and activation statistics from torch calls."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.frames: list[_Frame] = []
        self.calls: Counter[str] = Counter()
        self.layers: list[LayerStats] = []
        self.activations: list[ActivationStats] = []
        self.outputs: list[weakref.ref] = []  # each activation's output, to recognise the prediction
        self.last_layer: tuple[int, int | None] | None = None  # (ndim, unit axis) of the latest layer output
        self.paused = False  # our own statistics must not be recorded as the model's calls

    def entering(self, path: str) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:
            self.calls[path] += 1
            count = self.calls[path]
            self.frames.append(_Frame(module, path if count == 1 else f"{path}#{count}"))

        return hook

    def leaving(self, module: nn.Module, args: Any, output: Any) -> None:
        frame = self.frames.pop()
        role = _role(module)
        output = _first_tensor(output)
        if role is not None and output is not None and output.is_floating_point() and output.numel():
            with self._paused():
                self.layers.append(self._layer_stats(frame, role, output))

    @contextlib.contextmanager
    def _paused(self) -> Iterator[None]:
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def _layer_stats(self, frame: _Frame, role: str, output: torch.Tensor) -> LayerStats:
        channels_first = isinstance(frame.module, CHANNELS_FIRST_TYPES) and output.dim() >= 3
        unit_axis = 1 if channels_first else (output.dim() - 1 if output.dim() >= 2 else None)
        self.last_layer = (output.dim(), unit_axis)
        moments = _Moments.of(output, unit_axis)
        return LayerStats(
            name=frame.name or type(frame.module).__name__,
            kind=type(frame.module).__name__,
            role=role,
            shape=tuple(output.shape),
            mean=moments.overall_mean,
            std=moments.overall_std,
            unit_std=moments.unit_std,
            weight_rms=_weight_rms(frame.module),
        )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = None if self.paused else activation_kind(func, args, kwargs)
        x = args[0] if args else kwargs.get("input")
        if kind is None or not self._is_batch_tensor(x):
            return func(*args, **kwargs)
        named = self._activation_name(kind)
        if named is None:
            return func(*args, **kwargs)
        name, functional = named
        unit_axis = self._unit_axis(x)
        before = _pre_activation(x, unit_axis, kind)  # before the call: in-place variants overwrite x
        output = func(*args, **kwargs)
        after = _Moments.of(output, unit_axis)
        self.activations.append(
            ActivationStats(
                name=name, kind=kind, functional=functional, shape=tuple(x.shape),
                output_mean=after.overall_mean, output_std=after.overall_std, **before,
            )
        )
        self.outputs.append(weakref.ref(output))
        return output

    def _is_batch_tensor(self, x: Any) -> bool:
        """Activations of the batch, (B, ...) or sequence-first (L, B, ...), not of a parameter
        (a learned gate or temperature)."""
        return (
            isinstance(x, torch.Tensor) and not isinstance(x, nn.Parameter) and x.is_floating_point()
            and x.dim() >= 2 and self.batch_size in x.shape[:2]
        )

    def _activation_name(self, kind: str) -> tuple[str, bool] | None:
        """(name, functional) for this call, or None when it is the internal call of an
        activation module that was already recorded."""
        frame = self.frames[-1] if self.frames else None
        if frame is None:  # called outside the model's forward (e.g. by an output selector)
            return None
        if _is_activation_module(frame.module):
            if frame.activation_recorded:
                return None
            frame.activation_recorded = True
            return frame.name, False
        key = f"{frame.name or type(frame.module).__name__}:{kind}"
        self.calls[key] += 1
        return f"{key}#{self.calls[key]}", True

    def _unit_axis(self, x: torch.Tensor) -> int | None:
        """The unit axis of the layer that produced x when its layout matches, else the default."""
        if self.last_layer is not None and self.last_layer[0] == x.dim():
            return self.last_layer[1]
        return _default_unit_axis(x)

    def finished_activations(self, prediction: Any) -> tuple[ActivationStats, ...]:
        """The activations, the one whose output the model returned marked ``is_output``."""
        storage = _storage(prediction)
        result = []
        for stats, ref in zip(self.activations, self.outputs):
            alive = ref()
            is_output = alive is not None and storage is not None and _storage(alive) == storage
            result.append(replace(stats, is_output=True) if is_output else stats)
        return tuple(result)


def _pre_activation(x: torch.Tensor, unit_axis: int | None, kind: str) -> dict[str, Any]:
    x = x.detach()
    moments = _Moments.of(x, unit_axis)
    return {
        "input_mean": moments.overall_mean,
        "input_std": moments.overall_std,
        "positive_share": float((x > 0).sum()) / x.numel(),
        "ever_active": (x.amax(dim=_other_dims(x, unit_axis)) > 0).reshape(-1).cpu(),
        "saturation_floor": _saturation_floor(x, unit_axis) if kind in SATURATING_KINDS else None,
    }


def _saturation_floor(x: torch.Tensor, unit_axis: int | None) -> torch.Tensor:
    """Per unit, the |value| that SATURATED_SHARE of its values reach: the unit is saturated for at
    least that share of the batch wherever this lies beyond the function's saturation point."""
    magnitudes = (x.movedim(unit_axis, 0) if unit_axis is not None else x.unsqueeze(0)).abs().float()
    magnitudes = magnitudes.reshape(magnitudes.shape[0], -1)
    count = magnitudes.shape[1]
    k = math.floor((1 - SATURATED_SHARE) * count) + 1
    return magnitudes.kthvalue(min(k, count), dim=1).values.cpu()


def _storage(value: Any) -> int | None:
    tensor = _first_tensor(value) if not isinstance(value, torch.Tensor) else value
    return tensor.untyped_storage().data_ptr() if tensor is not None else None
