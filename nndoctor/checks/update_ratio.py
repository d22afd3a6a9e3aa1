"""update_ratio: how far one step of the user's optimizer moves the weights, relative to their
size (seed 002: "Ratio of weight-magnitudes to weight-updates: if this ratio is too low (typically
less than 1e-4) ... your network is learning too slowly"; CS231n: about 1e-3 is healthy).

||delta w|| / ||w|| per weight tensor after the first step of the shared step probe, with the
configured learning rate and weight decay. The typical (median) ratio over the weight matrices is
judged; biases, norm parameters and embeddings are shown but not judged (other scales; an
embedding only moves in the rows of the tokens in the batch). Weights that are exactly zero have
no ratio, and weights without a gradient at that step did not move for reasons gradient_flow
reports, so neither is judged here.

Adam's first step moves every weight with a gradient by about lr, whatever the gradient's scale,
so there the ratio is about lr / rms(w): that is the step the user's setup takes, and it is what is
measured. Both SGD's and Adam's first steps scale linearly with the learning rate, which is what
the suggested learning rate in the fix relies on.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Mapping

from nndoctor import training
from nndoctor.context import Context
from nndoctor.probes.step import ParamStep, StepProbe, gradient_step
from nndoctor.result import Finding, PlotData, Status, Table

HEALTHY = 1e-3  # CS231n's rule of thumb for the update/weight ratio
WORST_SHOWN = 3


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    probe = ctx.shared(gradient_step)
    if not probe.finite:
        return Finding.skip(f"the loss or a gradient is not finite (loss {probe.loss:.3g}), so no step was taken; see numerics")
    judged = [p for p in probe.params if _judged(p)]
    if not judged:
        return Finding.skip("no trained weight matrix is non-zero and had a gradient at the first step (see gradient_flow)")
    by_ratio = sorted(judged, key=lambda p: p.update_ratio)
    median = statistics.median(p.update_ratio for p in judged)
    typical = median * _momentum_gain(probe.momentum)
    lr = training.configured_lr(ctx)
    metrics = {
        "median_ratio": median, "typical_ratio": typical, "min_ratio": by_ratio[0].update_ratio,
        "max_ratio": by_ratio[-1].update_ratio, "judged": len(judged), "lr": lr, "optimizer": probe.optimizer,
        "momentum": probe.momentum, "loss_before": probe.loss, "loss_after": probe.loss_after,
    }
    evidence = (
        "smallest: " + ", ".join(f"{p.name} {p.update_ratio:.1e}" for p in by_ratio[:WORST_SHOWN]),
        "largest: " + ", ".join(f"{p.name} {p.update_ratio:.1e}" for p in reversed(by_ratio[-WORST_SHOWN:])),
        f"loss on the same batch {probe.loss:.4g} before the step, {probe.loss_after:.4g} after",
        *_not_judged(probe),
    )
    status, verdict, codes = _judge(typical, probe, thresholds)
    return Finding(
        status, f"{_headline(median, typical, len(judged), probe, lr)}: {verdict}", metrics, evidence,
        tables=(_table(probe),), fix=_fix(typical, lr) if status is not Status.PASS else None, plots=(_plot(judged),),
        codes=codes,
    )


def _judged(p: ParamStep) -> bool:
    return p.trainable and p.role == "weight" and p.has_gradient and p.weight_norm > 0


def _momentum_gain(momentum: float) -> float:
    """SGD/RMSprop momentum starts from the first gradient and builds up to 1/(1 - momentum) times
    the first step while gradients agree, so the typical step is larger than the first one."""
    return 1.0 / (1.0 - momentum) if 0.0 < momentum < 1.0 else 1.0


def _headline(median: float, typical: float, count: int, probe: StepProbe, lr: float | None) -> str:
    text = f"median ||Δw||/||w|| {median:.1e} over {count} weight tensors after one {probe.optimizer} step"
    text += f" (lr {lr:g})" if lr is not None else ""
    if typical != median:
        text += f", ≈{typical:.1e} once momentum {probe.momentum:g} builds up"
    return text


def _judge(typical: float, probe: StepProbe, thresholds: Mapping[str, Any]) -> tuple[Status, str, tuple[str, ...]]:
    rose = probe.loss_after is not None and not probe.loss_after <= probe.loss  # NaN after counts as a rise
    if not math.isfinite(typical) or typical > thresholds["high_fail"]:
        return Status.FAIL, f"far too large (> {thresholds['high_fail']:g}): the step overwrites the weights", ("too_large",)
    if typical > thresholds["high_warn"]:
        if rose:  # a gradient step small enough lowers the loss on its own batch: this one overshoots
            return Status.FAIL, f"too large (> {thresholds['high_warn']:g}): the loss on the same batch rose after the step", ("too_large",)
        return Status.WARN, f"large (> {thresholds['high_warn']:g}): training is likely to jump around or diverge", ("too_large",)
    if typical < thresholds["low_fail"]:
        return Status.FAIL, f"far too small (< {thresholds['low_fail']:g}): the weights barely move", ("too_small",)
    if typical < thresholds["low_warn"]:
        return Status.WARN, f"small (< {thresholds['low_warn']:g}): the network learns very slowly", ("too_small",)
    return Status.PASS, f"healthy (within {thresholds['low_warn']:g}-{thresholds['high_warn']:g}; about {HEALTHY:g} is typical)", ()


def _fix(typical: float, lr: float | None) -> str:
    direction = "Raise" if typical < HEALTHY else "Lower"
    if lr is None or not math.isfinite(typical) or typical == 0:
        return f"{direction} the learning rate until one step changes the weights by about {HEALTHY:g} of their size."
    suggested = lr * HEALTHY / typical  # the first step scales linearly with the learning rate
    return (
        f"{direction} the learning rate: a step changes the weights by {typical:.1e} of their size; "
        f"about {HEALTHY:g} is healthy, i.e. lr ≈ {suggested:.1g} instead of {lr:g}."
    )


def _not_judged(probe: StepProbe) -> tuple[str, ...]:
    weights = [p for p in probe.params if p.trainable and p.role == "weight"]
    zero = [p.name for p in weights if p.weight_norm == 0]
    still = [p.name for p in weights if p.weight_norm > 0 and not p.has_gradient]
    lines = []
    if zero:
        lines.append(f"not judged, zero-initialized: {', '.join(zero[:WORST_SHOWN])}" + (" ..." if len(zero) > WORST_SHOWN else ""))
    if still:
        lines.append(f"not judged, no gradient at this step: {len(still)} weight tensors (see gradient_flow)")
    return tuple(lines)


def _table(probe: StepProbe) -> Table:
    rows = tuple(
        (p.name, p.role, p.weight_norm, p.update_norm, p.update_ratio)
        for p in probe.params if p.trainable
    )
    return Table("Update after one step (forward order)", ("parameter", "kind", "||w||", "||Δw||", "||Δw||/||w||"), rows)


def _plot(judged: list[ParamStep]) -> PlotData:
    return PlotData(
        name="update_ratio", title="Update-to-weight ratio per layer after one step",
        xlabel="layer (forward order)", ylabel="||Δw|| / ||w||",
        series=(("||Δw||/||w||", tuple(p.name.removesuffix(".weight") for p in judged), tuple(p.update_ratio for p in judged)),),
        log_y=True,
    )
