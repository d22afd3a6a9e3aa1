"""input_normalization: are the float inputs mean-centered and of unit scale? (seed 002 "Mean
centering: make sure that your inputs have zero mean"; Ivanov; Holden.)

Statistics are per channel (dim 1 of image-like inputs), per feature (columns of tabular inputs,
the last dim of (batch, time, feature) sequences), over the run's scan of the data. Default
initializations assume inputs of about unit scale, so:

* the mean is judged against max(std, 1): a feature at mean 100 with std 30 is off-centre by
  3.3 of its own widths, while a sparse pixel at mean -0.4 with std 0.1 adds only a 0.4 offset,
  which the first layer's bias absorbs. The same makes one-hot and indicator {0, 1} columns
  beside standardized features pass: their mean is at most 1, one unit, whatever the class
  frequency, and leaving them as 0/1 is the usual practice;
* a std far above 1 (raw 0..255 pixels, unscaled tabular features) is the scale problem itself;
* a tiny std is flagged only if the values span less than 1 in all, so rarely active features
  (border pixels, sparse or indicator columns) are not mistaken for over-shrunk ones;
* constant columns have no std to divide by: they are listed, and judged by the mean rule alone
  (a constant 0 is harmless, a constant 2020 is a huge offset);
* inputs lying entirely in [0, 1] (ToTensor without Normalize, min-max scaling) are never
  negative, hence not centered: warn. Inputs made only of {0, 1} indicators (one-hot, bag of
  words) are exempt: they are conventionally fed as they are.

Integer inputs are token ids or indices for an embedding: there is nothing to normalize.

What matters is what the first weight layer receives. A model whose first layer (in execution
order, before any weight layer) is a standardizing normalization -- BatchNorm/InstanceNorm, which
centre and scale each channel over the batch, or LayerNorm/GroupNorm, which do so per sample --
standardizes raw inputs itself (the "input BatchNorm" idiom for raw sensor features), so
unstandardized inputs pass there, with that layer named. RMSNorm and LocalResponseNorm do not
centre, so they do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor.context import Context
from nndoctor.probes.data import named_tensors
from nndoctor.probes.trace import TraceUnavailable, trace
from nndoctor.result import Finding, PlotData, Status, Table

# centre and scale what they receive (over the batch or per sample) with unit gain at init
STANDARDIZING = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
UNIT = 1.0  # the input scale that default initializations (Kaiming, Glorot) assume
LISTED = 5  # worst channels named in the evidence
TABLE_ROWS = 32


@dataclass(frozen=True)
class Channel:
    name: str  # "channel 0", "feature 3", "[1] feature 0"
    kind: str  # "channel" (dim 1 of images, signals) or "feature"
    mean: float
    std: float
    low: float
    high: float
    two_valued: bool  # at most two distinct values: constant, one-hot, indicator

    @property
    def offset(self) -> float:
        return abs(self.mean) / max(self.std, UNIT)

    @property
    def constant(self) -> bool:
        return self.low == self.high


@dataclass(frozen=True)
class Verdict:
    channel: Channel
    status: Status
    reason: str
    code: str = ""


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    inputs, _ = ctx.scan()
    tensors = [(name, t) for name, t in named_tensors(inputs) if t.is_floating_point()]
    if not tensors:
        kinds = ", ".join(sorted({str(t.dtype).replace("torch.", "") for _, t in named_tensors(inputs)}))
        return Finding.skip(
            f"inputs are integer ({kinds}): token ids or indices for an embedding, not values to normalize "
            f"(if the model turns integer pixels into floats itself, it must scale them there)"
        )
    verdicts, unit_interval = [], []
    for name, tensor in tensors:
        channels = _channels(name, _finite_rows(tensor), _channel_dim(tensor, ctx.subject.model))
        judged = [_judge(c, thresholds) for c in channels]
        if _within_unit_interval(channels):
            unit_interval.append(name or "the inputs")
            # the table must say what the summary says: these channels are why the check warns
            judged = [_not_centred(v) if v.status is Status.PASS and not v.channel.constant else v for v in judged]
        verdicts.extend(judged)
    finding = _finding(verdicts, unit_interval, thresholds)
    if finding.status is Status.PASS or len(tensors) != 1:
        return finding
    standardizer = _input_standardizer(ctx)
    if standardizer is None:
        return finding
    return Finding(
        Status.PASS,
        f"inputs are not standardized ({finding.summary}), but the model's first layer, {standardizer}, "
        f"standardizes them before any weight layer sees them",
        {**finding.metrics, "standardized_by_model": True},
        (f"first layer in execution order: {standardizer}, a standardizing normalization",) + finding.evidence,
        finding.tables, plots=finding.plots,
    )


def _input_standardizer(ctx: Context) -> str | None:
    """'name (Kind)' of the standardizing normalization the inputs meet before any weight layer,
    or None. The trace lists layers in execution order, so its first one is what the input meets."""
    try:
        layers = ctx.shared(trace).layers
    except TraceUnavailable:
        return None
    if not layers:
        return None
    first = layers[0]
    try:
        module = ctx.subject.model.get_submodule(first.name.split("#")[0])
    except AttributeError:
        return None
    return f"{first.name} ({first.kind})" if isinstance(module, STANDARDIZING) else None


def _finite_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Samples without NaN/Inf (those are data_integrity's finding, and would poison every mean)."""
    keep = torch.isfinite(tensor.reshape(len(tensor), -1)).all(dim=1)
    return tensor[keep] if not bool(keep.all()) else tensor


def _channel_dim(tensor: torch.Tensor, model: nn.Module) -> int:
    """Dim 1 for images and (batch, channel, length) signals; the last dim for feature vectors and
    (batch, time, feature) sequences, told apart by whether the model starts with a Conv1d."""
    if tensor.dim() == 3:
        first = next((m for m in model.modules() if next(m.parameters(recurse=False), None) is not None), None)
        return 1 if isinstance(first, nn.Conv1d) else 2
    return 1


def _channels(name: str, x: torch.Tensor, dim: int) -> list[Channel]:
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if len(x) == 0:
        return []
    word = "channel" if dim == 1 and x.dim() > 2 else "feature"
    prefix = f"{name} " if name else ""
    others = tuple(d for d in range(x.dim()) if d != dim)
    x = x if x.dtype == torch.float64 else x.float()
    std, mean = torch.std_mean(x, dim=others, correction=0)
    low, high = x.amin(dim=others), x.amax(dim=others)
    shape = [-1 if d == dim else 1 for d in range(x.dim())]
    two_valued = ((x == low.view(shape)) | (x == high.view(shape))).all(dim=others)
    return [
        Channel(f"{prefix}{word} {i}", word, float(mean[i]), float(std[i]), float(low[i]), float(high[i]), bool(two_valued[i]))
        for i in range(len(mean))
    ]


def _judge(c: Channel, t: Mapping[str, Any]) -> Verdict:
    if c.std > t["std_fail_high"]:
        return Verdict(c, Status.FAIL, f"std {c.std:.3g} > {t['std_fail_high']}: unscaled", "unscaled")
    if c.offset > t["mean_fail"]:
        return Verdict(c, Status.FAIL, f"mean off-centre by {c.offset:.2g} x max(std, 1) > {t['mean_fail']}", "off_centre")
    if c.std > t["std_warn_high"]:
        return Verdict(c, Status.WARN, f"std {c.std:.3g} > {t['std_warn_high']}", "unscaled")
    if c.offset > t["mean_warn"]:
        return Verdict(c, Status.WARN, f"mean off-centre by {c.offset:.2g} x max(std, 1) > {t['mean_warn']}", "off_centre")
    if c.constant:
        return Verdict(c, Status.PASS, "constant")
    if c.std < t["std_warn_low"] and c.high - c.low < UNIT:
        return Verdict(c, Status.WARN, f"std {c.std:.2g} < {t['std_warn_low']}, all values within a span of {c.high - c.low:.2g}", "tiny_scale")
    return Verdict(c, Status.PASS, "")


def _not_centred(v: Verdict) -> Verdict:
    return Verdict(v.channel, Status.WARN, "in [0, 1]: never negative, so not mean-centered", "zero_one_inputs")


def _within_unit_interval(channels: list[Channel]) -> bool:
    """All values in [0, 1], and not merely {0, 1} indicators."""
    if not channels or all(c.two_valued for c in channels):
        return False
    return min(c.low for c in channels) >= 0 and max(c.high for c in channels) <= 1


def _finding(verdicts: list[Verdict], unit_interval: list[str], t: Mapping[str, Any]) -> Finding:
    ranked = sorted(verdicts, key=_severity, reverse=True)
    bad = [v for v in ranked if v.status is not Status.PASS]
    channels = [v.channel for v in verdicts]
    varying = [c for c in channels if not c.constant]
    constant = [c for c in channels if c.constant]
    metrics = {
        "channels": len(channels),
        "failing": sum(v.status is Status.FAIL for v in verdicts),
        "warning": sum(v.status is Status.WARN for v in verdicts),
        "constant": len(constant),
        "indicator": sum(c.two_valued and not c.constant for c in channels),
        "max_offset": max(c.offset for c in channels),
        "max_std": max((c.std for c in varying), default=0.0),
        "min_std": min((c.std for c in varying), default=0.0),
        "min": min(c.low for c in channels),
        "max": max(c.high for c in channels),
        "within_0_1": bool(unit_interval),
    }
    evidence = tuple(_line(v) for v in (bad or ranked)[:LISTED])
    if constant:
        names = ", ".join(f"{c.name} (= {c.low:.3g})" for c in constant[:LISTED])
        evidence += (f"{len(constant)} constant (std 0, not divided by): {names}" + (" ..." if len(constant) > LISTED else ""),)
    problems = []
    unscaled = [v for v in bad if v.code != "zero_one_inputs"]
    if unscaled:
        worst = unscaled[0]
        problems.append(
            f"{len(unscaled)} of {_noun(channels)} not standardized; worst {worst.channel.name}: mean "
            f"{worst.channel.mean:.3g}, std {worst.channel.std:.3g} ({worst.reason}){_raw_pixels_hint(metrics)}"
        )
    if unit_interval:
        means = [c.mean for c in channels]
        problems.append(
            f"{', '.join(unit_interval)} lie in [0, 1] (means {min(means):.2g}..{max(means):.2g}): "
            f"never negative, so not mean-centered"
        )
    if not problems:
        return Finding(Status.PASS, _clean_summary(channels, metrics), metrics, evidence, (_table(ranked),), plots=(_plot(channels),))
    status = Status.FAIL if metrics["failing"] else Status.WARN
    codes = [v.code for v in bad if v.status is status]
    return Finding(
        status, "; ".join(problems), metrics, evidence, (_table(ranked),), fix=_fix(metrics), plots=(_plot(channels),),
        codes=tuple(dict.fromkeys(codes)),
    )


def _clean_summary(channels: list[Channel], metrics: Mapping[str, Any]) -> str:
    summary = (
        f"{_noun(channels)} standardized: |mean| <= {metrics['max_offset']:.2g} x max(std, 1), "
        f"std {metrics['min_std']:.3g}..{metrics['max_std']:.3g}"
    )
    if metrics["indicator"]:
        summary += f" ({metrics['indicator']} of them 0/1-style indicators)"
    if metrics["constant"]:
        summary += f"; {metrics['constant']} constant"
    return summary


def _severity(v: Verdict) -> tuple[int, float]:
    rank = {Status.FAIL: 2, Status.WARN: 1}.get(v.status, 0)
    c = v.channel
    return rank, max(c.offset, c.std, 1 / c.std if c.std > 0 else 0.0)


def _noun(channels: list[Channel]) -> str:
    """ "3 channels", "1 feature" """
    return f"{len(channels)} {channels[0].kind}" + ("s" if len(channels) != 1 else "")


def _looks_like_raw_pixels(metrics: Mapping[str, Any]) -> bool:
    return metrics["min"] >= 0 and 100 < metrics["max"] <= 255


def _raw_pixels_hint(metrics: Mapping[str, Any]) -> str:
    return "; values span 0..255: raw pixels" if _looks_like_raw_pixels(metrics) else ""


def _fix(metrics: Mapping[str, Any]) -> str:
    advice = "Standardize with statistics of the training set: x = (x - mean) / std per channel or feature"
    if _looks_like_raw_pixels(metrics) or metrics["within_0_1"]:
        return advice + " (for images: ToTensor() to reach [0, 1], then Normalize(mean, std))."
    return advice + " (e.g. sklearn's StandardScaler fitted on the training split; one-hot columns may stay 0/1)."


def _line(v: Verdict) -> str:
    c = v.channel
    reason = f": {v.reason}" if v.reason else ""
    return f"{c.name}: mean {c.mean:.3g}, std {c.std:.3g}, range [{c.low:.3g}, {c.high:.3g}]{reason}"


def _table(ranked: list[Verdict]) -> Table:
    rows = tuple(
        (v.channel.name, round(v.channel.mean, 4), round(v.channel.std, 4), round(v.channel.low, 4),
         round(v.channel.high, 4), v.status.value)
        for v in ranked[:TABLE_ROWS]
    )
    title = f"Input statistics per channel (worst {len(rows)} of {len(ranked)})"
    return Table(title, ("channel", "mean", "std", "min", "max", "verdict"), rows)


def _plot(channels: list[Channel]) -> PlotData:
    shown = channels[:TABLE_ROWS * 2]
    names = tuple(c.name for c in shown)
    return PlotData(
        name="input_normalization", title="Input mean and std per channel", xlabel="channel", ylabel="value",
        series=(("mean", names, tuple(c.mean for c in shown)), ("std", names, tuple(c.std for c in shown))),
        kind="bar",
    )
