"""activation_variance: how the scale of activations changes with depth at initialization (seed
002, "Weight initialization (deeper models)": deeper layers "get multiplied with increasingly
smaller numbers and converge to zero"; Ivanov/DL4J: activation std of about 0.5 to 2).

Two measurements from one instrumented forward pass on a real batch:

* Depth. A stack of weight layers (Linear, Conv, RNN) multiplies the signal's scale by each
  layer's gain, so a poor init compounds into vanishing or exploding activations. Normalization
  layers reset the scale, so the compounding is judged over each stretch of weight layers between
  normalization layers (embeddings start a fresh signal too): the std of the deepest layer of a
  stretch against its first. In a ResNet or a normalized transformer those stretches are one or
  two layers long, and a pre-norm residual stream, which grows slowly by design, is read only
  through its normalized copies. The std used is each unit's std across the batch (RMS over
  units): the input-driven signal. A layer whose input signal has vanished still outputs its
  bias, so the plain std of its output would not show the loss.
* Normalization points. A normalization layer's output should have std near 1 (LayerNorm and
  BatchNorm with their default gain of 1). Far outside [std_low, std_high] means a gain set far
  from 1, or an eps that swamps an input whose variance has already vanished.

Not compared: the output layer (its scale is set for the loss, a small final-layer init is good
practice, and initial_loss judges it) and weight layers initialized to exactly zero (a deliberate
zero init of a residual branch; weight_init judges zero weights). Normalization layers with a
zero gain (torchvision's zero_init_residual) are skipped for the same reason. But when no hidden
layer's output varies across samples at all (every weight zero, or constant inputs), the input
never reaches the output: that fails outright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.probes.trace import EMBEDDING, NORM, WEIGHT, LayerStats, Trace, TraceUnavailable, trace
from nndoctor.result import Finding, PlotData, Status, Table


@dataclass(frozen=True)
class Change:
    """How the std changes from the first to the deepest layer of one stretch."""

    layers: tuple[LayerStats, ...]  # the stretch, in execution order

    @property
    def first(self) -> LayerStats:
        return self.layers[0]

    @property
    def last(self) -> LayerStats:
        return self.layers[-1]

    @property
    def vanishing(self) -> bool:
        return self.last.unit_std < self.first.unit_std

    @property
    def ratio(self) -> float:
        """Larger std over smaller; infinite when the signal is gone entirely (std exactly 0)."""
        first, last = self.first.unit_std, self.last.unit_std
        if first == 0:  # no input-driven signal to compare against
            return 1.0
        if last == 0:
            return math.inf
        return max(first / last, last / first)

    def describe(self) -> str:
        if math.isinf(self.ratio):
            gone = next(l for l in self.layers if l.unit_std == 0)
            return (
                f"from {gone.name} on, outputs no longer vary across samples (std 0; "
                f"{self.first.name} has {self.first.unit_std:.3g})"
            )
        return (
            f"std {self.ratio:.3g}x {'smaller' if self.vanishing else 'larger'} from {self.first.name} "
            f"({self.first.unit_std:.3g}) to {self.last.name} ({self.last.unit_std:.3g})"
        )


def _head(layers: tuple[LayerStats, ...]) -> LayerStats | None:
    weights = [layer for layer in layers if layer.role == WEIGHT]
    return weights[-1] if weights else None


def _zero_weights(layer: LayerStats) -> bool:
    return layer.weight_rms == 0


def _stretches(layers: tuple[LayerStats, ...], head: LayerStats | None) -> list[list[LayerStats]]:
    """Runs of weight layers in execution order, cut at normalization layers and embeddings."""
    stretches: list[list[LayerStats]] = [[]]
    for layer in layers:
        if layer.role in (NORM, EMBEDDING):
            stretches.append([])
        elif layer.role == WEIGHT and layer is not head and not _zero_weights(layer):
            stretches[-1].append(layer)
    return [s for s in stretches if len(s) >= 2]


def _silent(hidden: list[LayerStats]) -> bool:
    """No hidden layer's output varies across samples: the input is lost before the output layer
    (all weights zero or constant, or constant inputs)."""
    return bool(hidden) and all(layer.unit_std == 0 for layer in hidden)


def _table(trace_: Trace, head: LayerStats | None) -> Table:
    def role(layer: LayerStats) -> str:
        if layer is head:
            return "output layer (not compared)"
        if _zero_weights(layer):
            return f"{layer.role}, zero weights (not compared)"
        return layer.role

    rows = tuple(
        (layer.name, layer.kind, role(layer), layer.mean, layer.std, layer.unit_std) for layer in trace_.layers
    )
    return Table(
        "Layer outputs at init, in execution order",
        ("layer", "type", "role", "mean", "std", "std across samples"),
        rows,
    )


def _plot(trace_: Trace) -> PlotData:
    """Weight-layer signal std and normalization-output std against position in execution order."""
    lines = []
    for label, role, attribute in (
        ("weight layers (std across samples)", WEIGHT, "unit_std"),
        ("normalization outputs (std)", NORM, "std"),
    ):
        stds = [(i, getattr(layer, attribute)) for i, layer in enumerate(trace_.layers, 1) if layer.role == role]
        points = [(i, std) for i, std in stds if std > 0]  # a log axis cannot show a std of exactly 0
        if points:
            lines.append((label, tuple(i for i, _ in points), tuple(v for _, v in points)))
    return PlotData(
        name="activation_std",
        title="Activation std through depth at initialization",
        xlabel="layer (execution order)",
        ylabel="std",
        series=tuple(lines),
        log_y=True,
    )


def _depth_fix(change: Change) -> str:
    if change.vanishing:
        return (
            "Activations shrink layer after layer: initialize weights for the activation that follows "
            "(nn.init.kaiming_normal_(w, nonlinearity='relu') before ReLU, xavier_normal_ before tanh/sigmoid) "
            "instead of a small fixed std, or put BatchNorm/LayerNorm between the layers."
        )
    return (
        "Activations grow layer after layer: scale the initialization down to He/Glorot "
        "(std = sqrt(2 / fan_in) before ReLU, sqrt(1 / fan_in) before tanh), or put "
        "BatchNorm/LayerNorm between the layers."
    )


NORM_FIX = (
    "A normalization layer should output std near 1: keep its gain (weight) at 1 and its bias at 0 at "
    "init, and eps small (1e-5). With gain 1, a much smaller output means the input's variance is "
    "below eps: the signal vanished before it, or eps was set by mistake (BatchNorm2d(C, 0.1) sets "
    "eps, not momentum)."
)


SILENT_FIX = (
    "Zero or constant weights (or constant inputs) give every sample the same activations: initialize "
    "weights randomly, He (kaiming_normal_) before ReLU and Glorot (xavier_normal_) before tanh/sigmoid."
)


def _evidence(measured: Trace, worst: Change | None, off_band: list[LayerStats], thresholds: Mapping[str, Any]) -> list[str]:
    low, high = thresholds["std_low"], thresholds["std_high"]
    evidence = []
    if worst:
        evidence.append(
            f"largest change: {worst.describe()}, over {len(worst.layers)} weight layers with no normalization between them"
        )
    for norm in off_band[:5]:
        gain = f", gain {norm.weight_rms:.3g}" if norm.weight_rms is not None else ""
        evidence.append(f"{norm.name} ({norm.kind}) output std {norm.std:.3g}, outside [{low}, {high}]{gain}")
    zeroed = [l.name for l in measured.layers if _zero_weights(l)]
    if zeroed:
        evidence.append(f"zero-initialized, not compared: {', '.join(zeroed[:5])}")
    if measured.dropout:
        evidence.append(f"measured in train mode, as training sees it (dropout on in {len(measured.dropout)} modules)")
    return evidence


def _verdict(
    hidden: list[LayerStats], worst: Change | None, off_band: list[LayerStats], norms: list[LayerStats],
    thresholds: Mapping[str, Any],
) -> tuple[Status, str, str | None, tuple[str, ...]]:
    """(status, summary, fix, codes): no signal at all first, then a depth trend, then
    normalization outputs off the band."""
    low, high = thresholds["std_low"], thresholds["std_high"]
    if _silent(hidden):
        summary = (
            f"no hidden layer's output varies across samples (std 0 in all {len(hidden)} weight layers): "
            "the input does not reach the output"
        )
        return Status.FAIL, summary, SILENT_FIX, ("no_signal",)
    if worst and worst.ratio >= thresholds["depth_ratio_warn"]:
        status = Status.FAIL if worst.ratio >= thresholds["depth_ratio_fail"] else Status.WARN
        summary = f"activations {'vanish' if worst.vanishing else 'explode'} with depth: {worst.describe()}"
        return status, summary, _depth_fix(worst), ("vanishing" if worst.vanishing else "exploding",)
    if off_band:
        names = ", ".join(f"{n.name} {n.std:.3g}" for n in off_band[:3])
        summary = f"{len(off_band)} of {len(norms)} normalization outputs have std outside [{low}, {high}]: {names}"
        return Status.WARN, summary, NORM_FIX, ("normalization_off_band",)
    parts = [f"std changes at most {worst.ratio:.2g}x between normalization layers"] if worst else []
    if norms:
        parts.append(f"{len(norms)} normalization outputs have std within [{low}, {high}]")
    return Status.PASS, "; ".join(parts), None, ()


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    try:
        measured = ctx.shared(trace)
    except TraceUnavailable as exc:
        return Finding.skip(str(exc))
    head = _head(measured.layers)
    hidden = [l for l in measured.layers if l.role == WEIGHT and l is not head]
    changes = [Change(tuple(s)) for s in _stretches(measured.layers, head)]
    norms = [l for l in measured.layers if l.role == NORM and not _zero_weights(l)]
    if not changes and not norms and not _silent(hidden):
        return Finding.skip(
            "no two weight layers in a row and no normalization layer to examine "
            "(the output layer is not compared: its scale is set for the loss)"
        )
    worst = max(changes, key=lambda c: c.ratio, default=None)
    off_band = [n for n in norms if not thresholds["std_low"] <= n.std <= thresholds["std_high"]]
    status, summary, fix, codes = _verdict(hidden, worst, off_band, norms, thresholds)
    # The direction names what the verdict is about, so that a likely cause read from it agrees
    # with the summary: a warning about normalization outputs off the band (MobileNetV3's BatchNorm
    # eps=1e-3 above the variance of its tiny depthwise-conv outputs on 2x2 maps) has no depth
    # trend, even when the largest sub-threshold change happens to be a growth.
    judged_depth = worst is not None and (_silent(hidden) or worst.ratio >= thresholds["depth_ratio_warn"])
    metrics = {
        "depth_ratio": worst.ratio if worst else 1.0,
        "direction": ("vanishing" if worst.vanishing else "exploding") if judged_depth else None,
        "stretches": len(changes),
        "normalization_layers": len(norms),
        "normalization_off_band": len(off_band),
    }
    return Finding(
        status, summary, metrics, tuple(_evidence(measured, worst, off_band, thresholds)),
        tables=(_table(measured, head),), fix=fix, plots=(_plot(measured),), codes=codes,
    )
