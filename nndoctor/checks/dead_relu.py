"""dead_relu: ReLU units that never fire on a real batch at initialization (seed 002 "Dead
ReLUs": "they can 'die' when fed with values less than zero"; smdebug and TheDeepChecker flag a
layer when more than half of it is dead during training).

A unit (a feature, or a channel of a convolution) is dead when its pre-activation is <= 0 for
every sample and position of the batch: it outputs zero and passes no gradient, so nothing pulls
it back. Judged per layer on the ReLU family: modules and functional calls of relu, relu6 and
clamp(min=0). LeakyReLU (slope > 0), PReLU, ELU, GELU, SiLU and the like are not judged: their
negative side still passes a gradient, so their units cannot die this way.

At initialization even sound networks have some units that keep one sign for the whole batch
(a default-initialized bias outweighing a weak input signal): up to about half of a layer in
LeNet, VGG11's classifier, SqueezeNet or a 6-layer MLP. The thresholds in the catalog are set
above that; a broken layer (a large negative bias or shift) is dead almost entirely.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.problems import share_plot, share_status
from nndoctor.probes.trace import ActivationStats, TraceUnavailable, trace
from nndoctor.result import Finding, Status, Table

RELU_FAMILY = ("relu", "relu6", "clamp")
NEVER_DEAD = ("leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "hardswish")


def dead_fraction(layer: ActivationStats) -> float:
    return layer.dead_units / layer.units


def _describe(layer: ActivationStats) -> str:
    return (
        f"{layer.name}: {layer.dead_units}/{layer.units} units never active; pre-activation mean "
        f"{layer.input_mean:.3g}, std {layer.input_std:.3g}, {layer.positive_share:.1%} of values > 0"
    )


def _fix(problems: list[ActivationStats]) -> str:
    """Biases that push the pre-activations below zero call for a different fix than scale."""
    pushed_negative = [l.name for l in problems if l.input_mean < -l.input_std]
    if pushed_negative:
        return (
            f"The pre-activations of {', '.join(pushed_negative[:3])} sit below zero for every sample: "
            "initialize the biases feeding them to 0 or a small positive value (0.01) and check for a "
            "negative shift before the ReLU; LeakyReLU keeps a gradient on the negative side."
        )
    return (
        "Use He initialization (nn.init.kaiming_normal_(w, nonlinearity='relu')) and a small positive "
        "bias (0.01) for the layers feeding these ReLUs, normalize their inputs (BatchNorm/LayerNorm), "
        "or use LeakyReLU."
    )


def _table(layers: list[ActivationStats]) -> Table:
    rows = tuple(
        (l.name, l.kind, l.units, l.dead_units, dead_fraction(l), l.positive_share, l.input_mean, l.input_std)
        for l in layers
    )
    return Table(
        "ReLU layers at init, in execution order",
        ("layer", "kind", "units", "dead", "dead share", "values > 0", "pre-act mean", "pre-act std"),
        rows,
    )


def _summary(
    status: Status, worst: ActivationStats, layers: list[ActivationStats], problems: list[ActivationStats], batch: int
) -> str:
    if worst.dead_units == 0:
        return f"every unit of {len(layers)} ReLU layer(s) fires on some of {batch} samples"
    headline = (
        f"{worst.name} has {worst.dead_units}/{worst.units} units ({dead_fraction(worst):.0%}) "
        f"never active on {batch} samples"
    )
    if status is Status.PASS:
        return f"no ReLU layer is largely dead; the most: {headline}"
    return f"{len(problems)} of {len(layers)} ReLU layer(s) largely dead: {headline}"


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    try:
        measured = ctx.shared(trace)
    except TraceUnavailable as exc:
        return Finding.skip(str(exc))
    layers = [a for a in measured.activations if a.kind in RELU_FAMILY]
    not_judged = sorted({a.kind for a in measured.activations if a.kind in NEVER_DEAD})
    why_not_judged = f"{', '.join(not_judged)} pass a gradient for negative inputs, so they cannot die"
    if not layers:
        return Finding.skip("no ReLU activations" + (f"; {why_not_judged}" if not_judged else ""))
    worst = max(layers, key=dead_fraction)
    status = share_status(dead_fraction(worst), thresholds)
    problems = [l for l in layers if share_status(dead_fraction(l), thresholds) is not Status.PASS]
    evidence = [_describe(l) for l in problems[:5]] + ([f"not judged: {why_not_judged}"] if not_judged else [])
    metrics = {
        "max_dead_fraction": dead_fraction(worst),
        "worst_layer": worst.name,
        "dead_units": sum(l.dead_units for l in layers),
        "units": sum(l.units for l in layers),
        "layers": len(layers),
        "problem_layers": len(problems),
        "batch": measured.batch_size,
    }
    plot = share_plot(
        "dead_relu", "ReLU units never active on the batch, per layer",
        [l.name for l in layers], [dead_fraction(l) for l in layers],
    )
    return Finding(
        status, _summary(status, worst, layers, problems, measured.batch_size), metrics, tuple(evidence),
        tables=(_table(layers),), fix=_fix(problems) if problems else None, plots=(plot,),
        codes=("dead_units",) if problems else (),
    )
