"""saturation: tanh and sigmoid units stuck at their extremes at initialization (seed 002
"Saturated Tanh and Sigmoid": "at their extremes, derivatives are zero and your model stops
learning"; smdebug and TheDeepChecker).

A unit (a feature, or a channel of a convolution) is saturated when at least half of its values
over the batch lie beyond the limits: |tanh| > tanh_limit, or sigmoid within sigmoid_margin of 0
or 1, where the derivative has fallen to ~6% (tanh) or ~12% (sigmoid) of its peak. The probe keeps, per unit, the
|pre-activation| that half of its values exceed; the limits are translated into pre-activation
terms (atanh(tanh_limit), logit(1 - sigmoid_margin)) and compared with it. Judged per layer,
modules and functional calls alike. The model's own output activation (a sigmoid head) is not
judged: whether it belongs with the loss is output_head's question, and its scale at init is
initial_loss's. Gates inside nn.GRU/nn.LSTM run in fused kernels and are not visible.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from nndoctor.problems import share_plot, share_status
from nndoctor.context import Context
from nndoctor.probes.trace import SATURATED_SHARE, SATURATING_KINDS, ActivationStats, Trace, TraceUnavailable, trace
from nndoctor.result import Finding, Status, Table

RECURRENT = ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")


def pre_activation_limits(thresholds: Mapping[str, Any]) -> dict[str, float]:
    """|pre-activation| beyond which each function counts as saturated."""
    margin = thresholds["sigmoid_margin"]
    return {"tanh": math.atanh(thresholds["tanh_limit"]), "sigmoid": math.log((1 - margin) / margin)}


def saturated_units(layer: ActivationStats, limits: Mapping[str, float]) -> int:
    return int((layer.saturation_floor > limits[layer.kind]).sum())


def _describe(layer: ActivationStats, saturated: int) -> str:
    return (
        f"{layer.name} ({layer.kind}): {saturated}/{layer.units} units saturated; "
        f"pre-activation mean {layer.input_mean:.3g}, std {layer.input_std:.3g}"
    )


def _fix(problems: list[ActivationStats]) -> str:
    shifted = [l.name for l in problems if abs(l.input_mean) > l.input_std]
    if shifted:
        return (
            f"The pre-activations of {', '.join(shifted[:3])} are shifted far from zero: center the inputs "
            "(subtract the mean) and initialize the biases feeding them to 0; then keep their scale near 1 "
            "with Glorot init (nn.init.xavier_normal_) or a normalization layer before the activation."
        )
    return (
        "The pre-activations are too large: initialize the layers feeding them with Glorot "
        "(nn.init.xavier_normal_(w, gain=nn.init.calculate_gain('tanh')) before tanh, gain 1 before "
        "sigmoid) instead of a large fixed std, normalize inputs or add LayerNorm/BatchNorm before the "
        "activation, or switch hidden layers to ReLU-family activations."
    )


def _limits_text(thresholds: Mapping[str, Any]) -> str:
    return (
        f"|tanh| > {thresholds['tanh_limit']} or sigmoid within {thresholds['sigmoid_margin']} of 0/1 "
        f"on >= {SATURATED_SHARE:.0%} of a unit's values"
    )


def _skip_reason(measured: Trace) -> str:
    recurrent = [l.name for l in measured.layers if l.kind in RECURRENT]
    hidden = f" (the gates inside {', '.join(recurrent[:3])} run in fused kernels and are not visible)" if recurrent else ""
    return f"no tanh or sigmoid activations in the model's hidden layers{hidden}"


def _table(layers: list[ActivationStats], saturated: dict[str, int]) -> Table:
    return Table(
        "tanh/sigmoid layers at init, in execution order",
        ("layer", "kind", "units", "saturated", "saturated share", "pre-act mean", "pre-act std"),
        tuple(
            (l.name, l.kind, l.units, saturated[l.name], saturated[l.name] / l.units, l.input_mean, l.input_std)
            for l in layers
        ),
    )


def _summary(status: Status, worst: ActivationStats, saturated: int, layers: list[ActivationStats], problems: int) -> str:
    if saturated == 0:
        largest = max(l.input_std for l in layers)
        return f"no saturated units in {len(layers)} tanh/sigmoid layer(s); largest pre-activation std {largest:.3g}"
    headline = (
        f"{worst.name} ({worst.kind}) has {saturated}/{worst.units} units ({saturated / worst.units:.0%}) "
        f"saturated, pre-activation std {worst.input_std:.3g}"
    )
    if status is Status.PASS:
        return f"no tanh/sigmoid layer is largely saturated; the most: {headline}"
    return f"{problems} of {len(layers)} tanh/sigmoid layer(s) largely saturated: {headline}"


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    try:
        measured = ctx.shared(trace)
    except TraceUnavailable as exc:
        return Finding.skip(str(exc))
    layers = [a for a in measured.activations if a.kind in SATURATING_KINDS and not a.is_output]
    if not layers:
        return Finding.skip(_skip_reason(measured))
    limits = pre_activation_limits(thresholds)
    saturated = {l.name: saturated_units(l, limits) for l in layers}  # activation names are unique
    shares = {l.name: saturated[l.name] / l.units for l in layers}
    worst = max(layers, key=lambda l: shares[l.name])
    status = share_status(shares[worst.name], thresholds)
    problems = [l for l in layers if share_status(shares[l.name], thresholds) is not Status.PASS]
    outputs = [a.name for a in measured.activations if a.kind in SATURATING_KINDS and a.is_output]
    evidence = [_describe(l, saturated[l.name]) for l in problems[:5]]
    evidence.append(f"saturated means {_limits_text(thresholds)}")
    if outputs:
        evidence.append(f"not judged: the output activation {', '.join(outputs)} (see output_head, initial_loss)")
    metrics = {
        "max_saturated_fraction": shares[worst.name],
        "worst_layer": worst.name,
        "saturated_units": sum(saturated.values()),
        "units": sum(l.units for l in layers),
        "layers": len(layers),
        "problem_layers": len(problems),
        "batch": measured.batch_size,
    }
    plot = share_plot("saturation", "Saturated tanh/sigmoid units per layer", list(shares), list(shares.values()))
    return Finding(
        status, _summary(status, worst, saturated[worst.name], layers, len(problems)), metrics, tuple(evidence),
        tables=(_table(layers, saturated),), fix=_fix(problems) if problems else None, plots=(plot,),
        codes=("saturated_units",) if problems else (),
    )
