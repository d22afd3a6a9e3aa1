"""weight_init: per-layer statistics of the initial weights (seed 002 "Weight initialization",
"Plot variance of weights"; seed 004: weights initialized to zero never break symmetry).

Judged: the weights of Linear, Conv*, recurrent (RNN/GRU/LSTM) and attention layers, and of
embeddings for degeneracy only (their N(0, 1) default and the common N(0, 0.02) are both fine).
Biases and norm-layer affine parameters are constant by design and are not judged; neither are
frozen weights (not trained, so not an initialization choice: fixed filters, pretrained parts).

- Degenerate: all zero, constant, or every unit (row: a neuron, a conv filter) identical. Units
  with identical weights compute the same thing and, when they feed further layers unchanged, get
  identical gradients forever: symmetry never breaks. Two zero-initializations are known good
  practice and pass: the output layer (a zero classifier head; earlier layers are random, so its
  rows separate at the first step) and a layer whose output is added to a signal that still
  carries the input (the last layer of a residual branch in Fixup / "zero-init residual", LoRA's B,
  zero-gated branches). A short forward pass tells them apart: does the next layer that runs still
  see inputs that vary across samples?
- Scale: the std against the range spanned by known-good schemes for the layer's fan-in/fan-out
  and the activation that follows it (PyTorch's default kaiming_uniform(a=sqrt(5)) = 1/sqrt(3 fan_in),
  LeCun, He with fan-in or fan-out, Glorot, orthogonal, and for recurrent layers PyTorch's
  1/sqrt(3 hidden)). A range, because each of these schemes trains well. Layers followed by a
  normalization layer are scale-free in the forward pass and are not judged on scale; the output
  layer has no lower bound (small output layers are recommended).
- Offset: a mean far from zero against the std (``uniform_()`` without bounds gives U(0, 1)): all
  units then respond to the same input direction.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor import training
from nndoctor.context import Context
from nndoctor.problems import worst_status
from nndoctor.probes.step import EMBEDDINGS, NORM_LAYERS, step_batch_size
from nndoctor.result import Finding, PlotData, Status, Table

LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.MultiheadAttention, *EMBEDDINGS)
RELU_FAMILY = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Softplus,
)
# The scheme recommended before each activation and its gain (torch.nn.init.calculate_gain).
ACTIVATIONS = (
    (RELU_FAMILY, "He", math.sqrt(2)),
    ((nn.Tanh, nn.Hardtanh), "Glorot", 5 / 3),
    ((nn.Sigmoid, nn.Hardsigmoid, nn.LogSigmoid, nn.Softmax, nn.LogSoftmax), "Glorot", 1.0),
    ((nn.SELU,), "LeCun", 1.0),
)
# Below this many elements, sample statistics say too little to judge scale or offset.
MIN_ELEMENTS = 16
# PyTorch's default init sits on the lower edge of the range: sampling noise alone puts it a few
# percent outside, which is not worth mentioning.
NOTABLE = 1.25


@dataclass
class Layer:
    path: str  # module path, e.g. "encoder.layers.0.linear1"
    name: str  # parameter name, e.g. "encoder.layers.0.linear1.weight"
    module: nn.Module
    weight: torch.Tensor
    activation: nn.Module | None = None  # the activation module that follows, if one is seen
    normalized: bool = False  # a normalization layer follows before the next layer
    final: bool = False  # the last layer (in registration order): the output layer


@dataclass(frozen=True)
class Judgement:
    layer: Layer
    std: float
    mean: float
    degenerate: str | None  # "all zero", "constant", "identical units"
    low: float  # the range of std that known-good schemes give (0 when no lower bound applies)
    high: float
    recommended: float | None  # the scheme for the following activation, for the table and plot
    scheme: str
    status: Status
    problem: str | None
    code: str = ""  # the finding code of the problem

    @property
    def off_by(self) -> float | None:
        """How far the std lies outside the good range, as a factor (1.0 inside it)."""
        if self.recommended is None or self.std == 0:
            return None
        return max(self.low / self.std, self.std / self.high, 1.0)


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    model = _materialized(ctx, ctx.subject.fresh_model())
    layers = _layers(model)
    trained = [layer for layer in layers if layer.weight.requires_grad]
    if not trained:
        return Finding.skip("no trainable Linear, Conv, recurrent, attention or embedding weights to judge")
    degenerate = {layer.name: _degenerate(layer, thresholds["identical_tolerance"]) for layer in trained}
    excused = _benign_degenerate(ctx, model, [layer for layer in trained if degenerate[layer.name]], degenerate)
    judged = [_judge(layer, degenerate[layer.name], excused.get(layer.name), thresholds) for layer in trained]
    return _finding(judged, excused, len(layers) - len(trained))


def _materialized(ctx: Context, model: nn.Module) -> nn.Module:
    """Lazy modules (nn.LazyLinear ...) create their weights in the first forward pass."""
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
        with torch.no_grad():
            ctx.subject.predict(model, ctx.batch(step_batch_size(ctx))[0])
    return model


def _layers(model: nn.Module) -> list[Layer]:
    """Weights of the judged layer types in registration order, each with the activation and
    normalization modules registered after it (before the next layer): for Sequential models and
    most custom ones that is the order of the forward pass. Functional activations (torch.relu in
    forward) are invisible here; the range then allows both the linear and the ReLU gain."""
    layers: list[Layer] = []
    current: list[Layer] = []
    seen: set[int] = set()  # a tied weight (embedding = output layer) is judged once, where first met
    for path, module in model.named_modules():
        if isinstance(module, LAYERS):
            current = [
                Layer(path, f"{path}.{name}" if path else name, module, p)
                for name, p in module.named_parameters(recurse=False) if p.dim() >= 2 and id(p) not in seen
            ]
            seen.update(id(layer.weight) for layer in current)
            layers += current
        elif isinstance(module, NORM_LAYERS):
            for layer in current:
                layer.normalized = True
        elif _scheme(module) is not None:
            for layer in current:
                layer.activation = module
            current = []  # an activation closes the layer: a norm after it belongs to the next one
    outputs = [layer for layer in layers if not isinstance(layer.module, EMBEDDINGS)]
    if outputs:
        outputs[-1].final = True
    return layers


def _scheme(activation: nn.Module | None) -> tuple[str, float] | None:
    for types, scheme, gain in ACTIVATIONS:
        if isinstance(activation, types):
            return scheme, gain
    return None


def _units(layer: Layer) -> torch.Tensor:
    """The weight as (units, inputs): one row per output neuron / filter / gate unit."""
    weight = layer.weight.detach()
    if isinstance(layer.module, nn.modules.conv._ConvTransposeNd):  # stored as (in, out/groups, ...)
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1).float()


def _degenerate(layer: Layer, tolerance: float) -> str | None:
    units = _units(layer)
    scale = float(units.abs().max()) if units.numel() else 0.0
    if scale == 0:
        return "all zero"
    if float(units.max() - units.min()) <= tolerance * scale:
        return "constant"
    if units.shape[0] > 1 and _same(units[1], units[0], tolerance * scale) and _same(units, units[:1], tolerance * scale):
        return "identical units"
    return None


def _same(a: torch.Tensor, b: torch.Tensor, tolerance: float) -> bool:
    return float((a - b).abs().max()) <= tolerance


def _benign_degenerate(
    ctx: Context, model: nn.Module, layers: list[Layer], degenerate: dict[str, str | None]
) -> dict[str, str]:
    """Why a degenerate layer is harmless, by parameter name: the output layer, or a zero layer
    whose output is added to a signal that still varies across samples (a residual branch)."""
    if not layers:
        return {}
    after = _next_layer_input_varies(ctx, model, {layer.path for layer in layers})
    excused = {}
    for layer in layers:
        varies = after.get(layer.path)
        if varies is None:
            excused[layer.name] = "the output layer: zero/constant output weights are fine, the layers before are random"
        elif varies and degenerate[layer.name] == "all zero":
            excused[layer.name] = "zero-initialized branch: its output is added to a signal that still carries the input"
    return excused


def _next_layer_input_varies(ctx: Context, model: nn.Module, paths: set[str]) -> dict[str, bool | None]:
    """One forward pass of the check's copy, in train mode (in eval mode TransformerEncoderLayer
    takes a fused path that calls none of its sublayers) with dropout off (it would make constant
    inputs look varied). For each path: whether the first layer that starts after it finishes
    receives an input that varies across samples; None when no layer runs after it."""
    training.without_regularization(model).train()
    inputs, _ = ctx.batch(step_batch_size(ctx))
    events: list[tuple[str, str, bool]] = []  # ("start" | "end", module path, input varies)
    with contextlib.ExitStack() as stack:
        for path, module in model.named_modules():
            if isinstance(module, LAYERS):
                stack.enter_context(module.register_forward_pre_hook(
                    lambda mod, args, path=path: events.append(("start", path, _varies(args)))))
                stack.enter_context(module.register_forward_hook(
                    lambda mod, args, out, path=path: events.append(("end", path, True))))
        with torch.no_grad():
            ctx.subject.predict(model, inputs)
    return {path: _after(events, path) for path in paths}


def _after(events: list[tuple[str, str, bool]], path: str) -> bool | None:
    # A layer that is not called itself (MultiheadAttention uses out_proj's weights directly)
    # ends with its nearest ancestor that is.
    candidates = [path]
    while "." in candidates[-1]:
        candidates.append(candidates[-1].rpartition(".")[0])
    for candidate in candidates:
        ends = [i for i, (kind, p, _) in enumerate(events) if kind == "end" and p == candidate]
        if ends:
            later = [varies for kind, _, varies in events[ends[0] + 1:] if kind == "start"]
            return later[0] if later else None
    return None  # never runs: nothing downstream depends on it


def _varies(args: tuple) -> bool:
    """Whether the first tensor argument differs between samples (along the first dimension)."""
    tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if tensor is None or tensor.dim() == 0 or tensor.shape[0] < 2:
        return True  # nothing to compare: assume it does
    x = tensor.detach().float()
    scale = float(x.abs().max())
    return scale > 0 and float((x - x[:1]).abs().max()) > 1e-6 * scale


def _expected(layer: Layer) -> tuple[float, float, float | None, str]:
    """(low, high, recommended std, scheme name) for the layer's weight."""
    weight = layer.weight
    receptive = weight[0][0].numel()
    # PyTorch's own default for Linear and Conv, with its fan-in (dim 1, also for ConvTranspose)
    candidates = [1 / math.sqrt(3 * weight.shape[1] * receptive)]
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    if isinstance(layer.module, nn.modules.conv._ConvTransposeNd):  # stored as (in, out/groups, ...)
        fan_in, fan_out = fan_out, fan_in
    units, inputs = _units(layer).shape
    named = _scheme(layer.activation)
    gains = {1.0, named[1] if named else math.sqrt(2)}  # unknown activation: linear or ReLU
    for g in gains:
        candidates += [
            g / math.sqrt(fan_in),  # LeCun (g = 1), He fan-in mode
            g / math.sqrt(fan_out),  # He fan-out mode (torchvision's ResNets)
            g * math.sqrt(2 / (fan_in + fan_out)),  # Glorot
            g / math.sqrt(max(units, inputs)),  # orthogonal
        ]
    if isinstance(layer.module, nn.RNNBase):
        candidates.append(1 / math.sqrt(3 * layer.module.hidden_size))  # PyTorch's RNN default
    scheme, gain = named or ("LeCun", 1.0)
    recommended = {"He": gain / math.sqrt(fan_in), "Glorot": gain * math.sqrt(2 / (fan_in + fan_out))}.get(
        scheme, 1 / math.sqrt(fan_in)
    )
    if layer.final:
        return 0.0, max(candidates), recommended, scheme
    return min(candidates), max(candidates), recommended, scheme


def _judge(layer: Layer, degenerate: str | None, excuse: str | None, thresholds: Mapping[str, Any]) -> Judgement:
    weight = layer.weight.detach().float()
    std = float(weight.std()) if weight.numel() > 1 else 0.0
    embedding = isinstance(layer.module, EMBEDDINGS)
    low, high, recommended, scheme = (0.0, math.inf, None, "") if embedding else _expected(layer)
    judgement = Judgement(layer, std, float(weight.mean()), degenerate, low, high, recommended, scheme, Status.PASS, None)
    if degenerate:
        if excuse:
            return judgement
        return replace(
            judgement, status=Status.FAIL, problem=f"{layer.name}: {degenerate}{_degenerate_detail(layer, degenerate)}",
            code="symmetric_weights",
        )
    if embedding or weight.numel() < MIN_ELEMENTS:
        return judgement
    status, problem, code = _judge_scale(judgement, thresholds)
    return replace(judgement, status=status, problem=problem, code=code)


def _degenerate_detail(layer: Layer, degenerate: str) -> str:
    if degenerate == "identical units":
        units = _units(layer).shape[0]
        return f" ({units} units with the same weights: symmetry is never broken)"
    value = float(layer.weight.detach().flatten()[0])
    return f" ({value:g} everywhere: every unit computes the same thing, symmetry is never broken)"


def _judge_scale(j: Judgement, thresholds: Mapping[str, Any]) -> tuple[Status, str | None, str]:
    off = j.off_by
    # A normalization layer right after rescales the output, so the scale only matters again once
    # the output variance nears the norm's eps: there only an extreme scale is worth a warning.
    warn_at = thresholds["std_ratio_fail"] if j.layer.normalized else thresholds["std_ratio_warn"]
    if off is not None and off > warn_at:
        status = Status.FAIL if off > thresholds["std_ratio_fail"] and not j.layer.normalized else Status.WARN
        side = "small" if j.std < j.low else "large"
        return status, (
            f"{j.layer.name}: std {j.std:.2g} is {off:.0f}x too {side} "
            f"(good schemes give {j.low:.2g}-{j.high:.2g}; {j.scheme} {j.recommended:.2g}{_before(j.layer)})"
        ), f"scale_too_{side}"
    if j.std > 0 and abs(j.mean) > thresholds["mean_offset_warn"] * j.std:
        return Status.WARN, f"{j.layer.name}: mean {j.mean:.2g} against std {j.std:.2g}: the weights are offset from zero", "offset_from_zero"
    return Status.PASS, None, ""


def _before(layer: Layer) -> str:
    return f" before {type(layer.activation).__name__}" if layer.activation is not None else ""


def _finding(judged: list[Judgement], excused: dict[str, str], frozen: int) -> Finding:
    status = worst_status(j.status for j in judged)
    problems = [j.problem for j in judged if j.problem and j.status is status]
    scaled = [j for j in judged if j.off_by is not None]
    worst = max(scaled, key=lambda j: j.off_by, default=None)
    metrics = {
        "layers": len(judged),
        "degenerate": sum(1 for j in judged if j.degenerate and j.layer.name not in excused),
        "worst_off_by": worst.off_by if worst else None,
        "worst_layer": worst.layer.name if worst else None,
        "frozen_not_judged": frozen,
    }
    if status is Status.PASS:
        summary = f"{len(judged)} weight tensors look well initialized" + (
            f"; {worst.layer.name} (std {worst.std:.2g}) is the furthest from the schemes' {worst.low:.2g}-{worst.high:.2g}, "
            f"{worst.off_by:.1f}x, within tolerance"
            if worst and worst.off_by > NOTABLE else ""
        )
    else:
        summary = problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    evidence = tuple(p for p in (j.problem for j in judged) if p) + tuple(
        f"{name}: {why}" for name, why in excused.items()
    ) + ((f"{frozen} frozen weight tensors not judged",) if frozen else ())
    codes = tuple(dict.fromkeys(j.code for j in judged if j.status is status and j.code))
    return Finding(
        status, summary, metrics, evidence, tables=(_table(judged),), fix=_fix(judged), plots=(_plot(scaled),), codes=codes,
    )


def _fix(judged: list[Judgement]) -> str | None:
    if any(j.degenerate and j.status is Status.FAIL for j in judged):
        return (
            "Do not initialize hidden layers to a constant: keep PyTorch's default init or use "
            "nn.init.kaiming_normal_ (ReLU family) / xavier_uniform_ (tanh, sigmoid). Zero-init only "
            "the output layer or the last layer of a residual branch."
        )
    if any(j.status is not Status.PASS for j in judged):
        return (
            "Re-initialize the named layers: nn.init.kaiming_normal_(w, nonlinearity='relu') before "
            "ReLU-family activations, nn.init.xavier_uniform_(w) before tanh/sigmoid, zero-mean in "
            "any case; or add normalization layers."
        )
    return None


def _table(judged: list[Judgement]) -> Table:
    rows = tuple(
        (
            j.layer.name, "x".join(map(str, j.layer.weight.shape)), _follows(j.layer), j.std,
            j.recommended, f"{j.low:.2g}-{j.high:.2g}" if j.recommended is not None else "",
            j.off_by, _note(j),
        )
        for j in judged
    )
    return Table(
        "Weight std per layer (registration order)",
        ("weight", "shape", "followed by", "std", "expected", "good range", "off by", "note"), rows,
    )


def _follows(layer: Layer) -> str:
    parts = [type(layer.activation).__name__] if layer.activation is not None else []
    if layer.normalized:
        parts.insert(0, "norm")
    return " + ".join(parts) or ("output" if layer.final else "")


def _note(j: Judgement) -> str:
    if j.degenerate:
        return j.degenerate + ("" if j.status is Status.FAIL else " (benign)")
    return j.status.value if j.status is not Status.PASS else ""


def _plot(scaled: list[Judgement]) -> PlotData:
    names = tuple(j.layer.name for j in scaled)
    return PlotData(
        name="weight_std", title="Weight std with depth against the recommended init",
        xlabel="layer (registration order)", ylabel="std",
        series=(
            ("weight std", names, tuple(j.std for j in scaled)),
            ("recommended", names, tuple(j.recommended for j in scaled)),
        ),
        log_y=True,
    )
