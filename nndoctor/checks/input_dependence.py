"""input_dependence: do the model's outputs depend on its input? (Karpathy, "A Recipe for Training
Neural Networks": "train an input-independent baseline (e.g. easiest is to just set all your
inputs to zero). This should perform worse than when you actually plug in your data"; seed 004: a
network that "predicts the same value for every input").

Two measurements:

* *at init*: how much the outputs vary across a batch of real inputs, relative to their size, in
  eval mode so that dropout cannot fake a variation. It is exactly zero when the input never
  reaches the output (``x * 0``, a forward that ignores its argument, all-zero weights, a dataset
  that returns the same input for every index).
* *the input-independent baseline*: overfit_small_batch's run on real inputs (shared: a few dozen
  samples, regularization off, the user's loss and optimizer, stopping once memorized) against
  the same run, same seed and samples, on zeroed inputs (token id 0 for integer inputs; boolean
  masks are kept), compared after the same number of steps (at most ``baseline_steps``). A model that ignores its input gives the very same loss curve;
  one that uses it memorizes what no constant prediction can, so the memorization setting makes
  the comparison hold on any data, learnable or not.
  The zero-input run is not needed when the real run already beat the constant bound by
  ``min_gain`` and the loss has an exact one: zeroed samples are all alike, so the zero-input model gives every sample
  the same prediction, and for a mean-reduced, unweighted cross-entropy, binary cross-entropy, MSE
  or L1 loss no such prediction does better than the best constant one (the class prior, the
  positive rate, the target mean or median; in expectation over dropout too, the losses being
  convex in the output). The real run's loss is then compared with that bound instead: an exact
  lower bound on the zero-input run's, so the gain is a lower bound too. This halves the check's
  cost on every model that memorizes.

Fail: identical loss curves; real inputs removing less than ``min_gain`` of the zero-input run's
loss; outputs identical at init that training does not make depend on the input. Outputs that
are identical at init only are no failure: a zero-initialized output layer (ViT's head, for one)
starts that way. Warn when neither run trained enough to tell (too few steps, too small a rate).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from nndoctor import batching
from nndoctor.context import Context
from nndoctor.curves import sample_points
from nndoctor.probes.data import named_tensors
from nndoctor.probes.overfit import OverfitSettings, overfit_fresh_copy, small_batch_run
from nndoctor.result import Finding, PlotData, Status

IDENTICAL = 1e-6  # relative difference below which two losses are the same number up to rounding
INCONCLUSIVE_FIX = (
    "Give the comparison more room: raise the learning rate or the step budget (baseline_steps) until "
    "the loss on real inputs falls; see overfit_small_batch."
)


@dataclass(frozen=True)
class AtInit:
    samples: int
    relative_spread: float  # std of the outputs across samples / mean |output| (nan: non-finite)
    inputs_identical: bool  # every sample of the batch has the same input
    layers: tuple[tuple[str, float], ...]  # (module path, relative spread of its output), call order


@dataclass(frozen=True)
class Baseline:
    """The two runs compared after the same number of steps."""

    steps: int
    real: tuple[float, ...]  # loss curve on real inputs, steps + 1 values
    zero: tuple[float, ...]  # ... on zeroed inputs
    floor: float  # the loss of a perfect prediction

    @property
    def identical(self) -> bool:
        return all(abs(r - z) <= IDENTICAL * max(abs(r), abs(z), 1e-12) for r, z in zip(self.real, self.zero))

    @property
    def gain(self) -> float:
        """How much of the zero-input run's remaining loss (above the floor) real inputs removed."""
        return _gain(self.real[-1], self.zero[-1], self.floor)

    def progress(self, curve: tuple[float, ...]) -> float:
        """Share of its starting loss (above the floor) a run removed."""
        room = curve[0] - self.floor
        return (curve[0] - curve[-1]) / room if room > 0 else 0.0


@dataclass(frozen=True)
class Bounded:
    """The real run against the loss no input-independent prediction can beat (the zero-input run
    not made: its loss could only be at or above this bound)."""

    steps: int
    real: tuple[float, ...]  # loss curve on real inputs, steps + 1 values
    bound: float  # the best constant prediction's loss: a lower bound on the zero-input run's
    floor: float

    @property
    def gain(self) -> float:
        """At most the zero-input run's gain: the share of the bound (above the floor) real inputs removed."""
        return _gain(self.real[-1], self.bound, self.floor)


def _gain(real: float, zero: float, floor: float) -> float:
    room = zero - floor
    return (zero - real) / room if room > 0 else 0.0


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    # The real-input run is overfit_small_batch's (catalog requires:), with its settings: shared.
    settings = OverfitSettings.for_subject(ctx, ctx.thresholds("overfit_small_batch"))
    compared = baseline(ctx, settings, int(thresholds["baseline_steps"]), float(thresholds["min_gain"]))
    return judge(at_init(ctx, settings.samples), compared, thresholds)


def judge(init: AtInit, compared: Baseline | Bounded | str, thresholds: Mapping[str, Any]) -> Finding:
    constant = init.relative_spread < thresholds["min_relative_spread"]
    metrics = {"relative_spread": init.relative_spread}
    init_line = f"relative spread of the outputs across {init.samples} inputs at init: {init.relative_spread:.3g}"
    if isinstance(compared, Bounded):
        return _bounded_finding(init, compared, metrics, init_line, constant, thresholds)
    if isinstance(compared, str):  # why the runs could not be compared
        if constant:
            return _constant_finding(init, metrics, (init_line, f"training comparison not run: {compared}"), thresholds)
        summary = (f"outputs vary across inputs at init (relative spread {init.relative_spread:.3g}); "
                   f"the zero-input comparison could not run: {compared}")
        return Finding(Status.PASS, summary, metrics, (init_line,))
    metrics.update(_baseline_metrics(compared))
    evidence = (init_line, *_curve_lines(compared))
    plots = (_plot(compared),)
    if compared.identical:
        summary = (
            f"training on zeroed inputs gives exactly the same losses as on real inputs ({compared.real[-1]:.3g} "
            f"after {compared.steps} steps): what the loss sees does not depend on the input"
        )
        return _constant_finding(init, metrics, evidence, thresholds, summary, plots)
    headline = (
        f"loss after {compared.steps} steps {compared.real[-1]:.3g} on real inputs vs {compared.zero[-1]:.3g} "
        f"on zeroed inputs (gain {compared.gain:.0%}, needed {thresholds['min_gain']:.0%})"
    )
    if compared.gain >= thresholds["min_gain"]:
        if constant:
            evidence = ("the outputs were identical across inputs at init (a zero-initialized output layer?), "
                        "but training makes them depend on the input", *evidence)
        return Finding(Status.PASS, f"outputs depend on the input: {headline}", metrics, evidence, plots=plots)
    if constant:
        return _constant_finding(init, metrics, evidence, thresholds, plots=plots)
    if max(compared.progress(compared.real), compared.progress(compared.zero)) < thresholds["min_gain"]:
        # Neither run moved by the gain asked for: too few steps or too small a learning rate to tell.
        return Finding(Status.WARN, f"inconclusive: neither run trained ({headline})", metrics, evidence,
                       fix=INCONCLUSIVE_FIX, plots=plots, codes=("inconclusive",))
    return Finding(Status.FAIL, f"real inputs do no better than zeroed ones: {headline}", metrics, evidence, plots=plots,
                   codes=("no_gain_over_zeroed_inputs",))


def _bounded_finding(
    init: AtInit, compared: Bounded, metrics: dict, init_line: str, constant: bool, thresholds: Mapping[str, Any],
) -> Finding:
    summary = (
        f"outputs depend on the input: loss after {compared.steps} steps {compared.real[-1]:.3g} on real inputs, "
        f"below the {compared.bound:.3g} of the best prediction that ignores the input (gain {compared.gain:.0%} "
        f"at least, needed {thresholds['min_gain']:.0%})"
    )
    evidence = [
        init_line,
        "loss on real inputs at step " + ", ".join(f"{i}: {compared.real[i]:.3g}" for i in sample_points(compared.steps)),
        "zeroed inputs make every sample alike, so a model trained on them predicts the same for all and "
        f"cannot beat the best constant prediction's {compared.bound:.3g}: that run was not needed",
    ]
    if constant:
        evidence.insert(0, "the outputs were identical across inputs at init (a zero-initialized output layer?), "
                           "but training makes them depend on the input")
    metrics.update(steps_compared=compared.steps, real_loss=compared.real[-1], zero_loss=None,
                   zero_loss_bound=compared.bound, gain=compared.gain, identical_curves=False)
    steps = tuple(range(compared.steps + 1))
    plot = PlotData(
        name="input_dependence", title="Input-independent baseline: training on real inputs vs the best constant prediction",
        xlabel="step", ylabel="loss",
        series=(("real inputs", steps, compared.real), ("best constant prediction", (0, compared.steps), (compared.bound, compared.bound))),
        log_y=all(v > 0 for v in (*compared.real, compared.bound)),
    )
    return Finding(Status.PASS, summary, metrics, tuple(evidence), plots=(plot,))


def _constant_finding(
    init: AtInit, metrics: dict, evidence: tuple[str, ...], thresholds: Mapping[str, Any],
    summary: str | None = None, plots: tuple[PlotData, ...] = (),
) -> Finding:
    """The failure for outputs that do not depend on the input, with where the input is lost."""
    if summary is None and init.inputs_identical:
        summary = f"all {init.samples} inputs of the batch are identical, and so are the outputs: the data carries no variation"
    elif summary is None:
        summary = (
            f"predicts the same value for every input: relative spread of the outputs across samples "
            f"{init.relative_spread:.2g} at init (threshold {thresholds['min_relative_spread']:g})"
        )
    where = _where_lost(init, thresholds["min_relative_spread"])
    if init.inputs_identical:
        fix = ("Every sample of the batch has the same input: the dataset returns one input for every "
               "index (check __getitem__ uses its index, and the transforms).")
    else:
        fix = ("Make forward() use its input: look for a multiplication by 0, an input that is overwritten "
               "or detached, a branch that skips it, or all-zero weights (weight_init).")
    code = "identical_inputs" if init.inputs_identical else "constant_output"
    return Finding(Status.FAIL, summary, metrics, (*where, *evidence), fix=fix, plots=plots, codes=(code,))


def _where_lost(init: AtInit, threshold: float) -> tuple[str, ...]:
    if init.inputs_identical:
        return ()
    if not init.layers:
        return ("no layer ran on the input: the output does not come from any submodule",)
    varying = [i for i, (_, s) in enumerate(init.layers) if s >= threshold]
    if not varying:
        return (f"no layer's output varies across samples, from the first to run ({init.layers[0][0]}) on: "
                "the input is lost before it",)
    last = varying[-1]
    if last + 1 < len(init.layers):
        return (f"outputs vary across samples up to {init.layers[last][0]} and not from {init.layers[last + 1][0]} on",)
    return (f"the last layer to run ({init.layers[last][0]}) still varies: the input is lost after it, in forward code",)


# --- measuring -----------------------------------------------------------------------------------


def relative_spread(output: Any) -> float:
    """Std of the outputs across the batch (dim 0), averaged over the other positions, divided by
    their mean magnitude: 0 for identical outputs, ~1 for outputs that vary as much as their size."""
    values = batching.main_tensor(output).detach().float()
    values = values.reshape(values.shape[0], -1)
    if not bool(torch.isfinite(values).all()):
        return math.nan
    scale = float(values.abs().mean())
    return float(values.std(dim=0, unbiased=False).mean()) / scale if scale > 0 else 0.0


def at_init(ctx: Context, samples: int) -> AtInit:
    inputs, _ = ctx.batch(samples)
    model = ctx.subject.fresh_model().eval()
    size = batching.batch_size_of(inputs)
    with torch.no_grad(), _layer_spreads(model, size) as layers:
        output = ctx.subject.predict(model, inputs)
    identical = size > 1 and all(bool((t == t[:1]).all()) for _, t in named_tensors(inputs))
    return AtInit(size, relative_spread(output), identical, tuple(layers))


@contextlib.contextmanager
def _layer_spreads(model: nn.Module, batch: int) -> Iterator[list[tuple[str, float]]]:
    """(path, relative spread) of each leaf module's output with the batch as its first dimension,
    in call order; hooks always removed."""
    seen: list[tuple[str, float]] = []

    def record(module, args, output, path):
        if isinstance(output, (tuple, list)):
            output = next((o for o in output if isinstance(o, torch.Tensor)), None)
        if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dim() > 0 and output.shape[0] == batch:
            seen.append((path, relative_spread(output)))

    with contextlib.ExitStack() as hooks:
        for path, module in model.named_modules():
            if path and next(module.children(), None) is None:
                hooks.enter_context(module.register_forward_hook(lambda m, a, o, path=path: record(m, a, o, path)))
        yield seen


def zeroed(value: Any) -> Any:
    """The batch with every number set to zero (token id 0 for integer inputs); boolean masks and
    non-tensor values are kept, so that the model still receives a well-formed batch."""
    if isinstance(value, torch.Tensor):
        return value if value.dtype == torch.bool else torch.zeros_like(value)
    if isinstance(value, dict):
        return {k: zeroed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(zeroed(v) for v in value)
    return value


def baseline(ctx: Context, settings: OverfitSettings, max_steps: int, min_gain: float) -> Baseline | Bounded | str:
    """The real-input run against the zero-input run after the same number of steps (those the
    real-input run took to memorize, at most ``max_steps``), against the constant bound when that
    settles the verdict, or why the two cannot be compared."""
    real = ctx.shared(small_batch_run, settings)
    if real.goal.baseline is not None and real.goal.baseline <= real.goal.floor:
        return "the samples' targets are all alike, so a constant prediction is already perfect"
    inputs, targets = ctx.batch(settings.samples)
    steps = min(real.curve.steps, max_steps)
    if real.goal.baseline is not None and _constant_is_exact_bound(ctx, zeroed(inputs), targets):
        bounded = Bounded(steps, real.curve.losses[: steps + 1], real.goal.baseline, real.goal.floor)
        if _nonfinite_step(bounded.real) is None and bounded.gain >= min_gain:
            return bounded
    try:
        zero = overfit_fresh_copy(ctx, zeroed(inputs), targets, replace(settings, max_steps=steps))
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:  # user code meeting an unusual input
        return f"the model rejects all-zero inputs ({type(exc).__name__}: {exc})"
    steps = min(steps, zero.curve.steps)
    real_curve, zero_curve = real.curve.losses[: steps + 1], zero.curve.losses[: steps + 1]
    broken = _nonfinite_step(real_curve, zero_curve)
    if broken is not None:
        return f"the loss turned non-finite at step {broken} (see numerics)"
    return Baseline(steps, real_curve, zero_curve, real.goal.floor)


# Losses whose best input-independent prediction is the one best_constant_loss computes (the class
# prior, the positive rate, the mean, the median), when mean-reduced and unweighted.
_EXACT_CONSTANT_LOSSES = (nn.CrossEntropyLoss, nn.BCEWithLogitsLoss, nn.BCELoss, nn.MSELoss, nn.L1Loss)


def _constant_is_exact_bound(ctx: Context, zero_inputs: Any, targets: Any) -> bool:
    """Whether no model fed ``zero_inputs`` can beat the best constant prediction's loss: every
    sample alike (masks included), a per-sample prediction (no token objective, where positions
    may differ), and a loss whose best constant prediction is known exactly (no ignored labels)."""
    loss_fn = ctx.subject.loss_fn
    if ctx.subject.token_objective is not None or type(loss_fn) not in _EXACT_CONSTANT_LOSSES:
        return False
    if getattr(loss_fn, "reduction", None) != "mean" or getattr(loss_fn, "weight", None) is not None:
        return False
    if getattr(loss_fn, "pos_weight", None) is not None or not isinstance(targets, torch.Tensor):
        return False
    if not targets.is_floating_point() and bool((targets < 0).any()):  # ignore_index labels
        return False
    tensors = [t for _, t in named_tensors(zero_inputs)]
    return bool(tensors) and all(t.dim() > 0 and bool((t == t[:1]).all()) for t in tensors)


def _nonfinite_step(*curves: tuple[float, ...]) -> int | None:
    steps = [i for curve in curves for i, v in enumerate(curve) if not math.isfinite(v)]
    return min(steps) if steps else None


# --- reporting -----------------------------------------------------------------------------------


def _baseline_metrics(b: Baseline) -> dict[str, Any]:
    return {
        "steps_compared": b.steps,
        "real_loss": b.real[-1],
        "zero_loss": b.zero[-1],
        "gain": b.gain,
        "progress": b.progress(b.real),
        "identical_curves": b.identical,
    }


def _curve_lines(b: Baseline) -> tuple[str, ...]:
    points = sample_points(b.steps)
    return (
        "loss on real inputs at step " + ", ".join(f"{i}: {b.real[i]:.3g}" for i in points),
        "loss on zeroed inputs at step " + ", ".join(f"{i}: {b.zero[i]:.3g}" for i in points),
    )


def _plot(b: Baseline) -> PlotData:
    steps = tuple(range(b.steps + 1))
    series = (("real inputs", steps, b.real), ("zeroed inputs", steps, b.zero))
    return PlotData(
        name="input_dependence",
        title="Input-independent baseline: training on real vs zeroed inputs",
        xlabel="step", ylabel="loss", series=series, log_y=all(v > 0 for v in (*b.real, *b.zero)),
    )
