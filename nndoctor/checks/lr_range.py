"""lr_range: a learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks"; Lightning's Tuner.lr_find; seed 002: tweak the learning rate "ideally in logarithmic
steps").

A copy of the model trains on one fixed batch with the user's optimizer class and settings (weight
decay, dropout and any regularization() penalty as configured) while the learning rate grows
exponentially from min_lr to max_lr (at least REACH x past the configured rate), one step per rate.
The loss is smoothed by a bias-corrected exponential moving average, as in Lightning. The sweep
stops at the divergence point: the first rate at which the smoothed loss rises above its starting
value, having either fallen at least MIN_DROP below it (the rate undoes all the progress the lower
ones made) or risen to diverge_factor x its best; or the loss turns NaN/Inf. On one fixed batch a
healthy run can drive the loss close to zero, where a few-fold rise is jitter at the floor, not
divergence: hence "above its starting value". Lightning's "4 x the best" alone misses losses that
cannot blow up: a network whose ReLUs a large rate has killed sits at the loss of a constant
prediction, about where it started (a CNN without normalization under Adam 0.1: the sweep falls to
0.8 x its start at lr 0.07, spikes and dies at 0.09, then stays at ln(10) up to lr 10; trained on
mini-batches at lr 0.1 it stays at chance).

Past REACH x the configured rate the sweep only refines the divergence point, which no longer
changes the verdict; it stops there once the suggestion is settled as well: the steepest descent
lies SAFETY x below the current rate (a later divergence cannot cap it) and the loss, positive
throughout, is below that steepest drop (it cannot fall more steeply later). A network that
memorizes the batch at low rates would otherwise spend the rest of the sweep at the floor
(torchvision ResNet-18 under Adam 1e-3 on 32x32 images: 38 steps instead of 50).

The suggestion is the rate where the smoothed loss falls fastest against log(lr), on the falling
part of the curve after the first few steps, and at least SAFETY x below the divergence point.
Because the optimizer is the user's, the range is calibrated for it: Adam's useful rates (~1e-4 to
1e-2) lie far below SGD's (~1e-3 to 1). Parameter groups keep their configured ratios of
learning rates; the first group's rate is the one swept and judged.

The slowly rising rate warms the model up, so a cold start diverges at rates 2-4x below the
sweep's divergence point (measured on the sound zoo against plain training runs). A configured rate
above the suggestion and less than REACH x below the divergence point is therefore also tried as it
would be used: COLD_STEPS steps from the initial weights, which blow up if the loss turns NaN/Inf
or reaches explode_factor x the initial one. Not less: normalized networks at standard rates spike
a few-fold in their first steps and recover (torchvision ResNet-18 with SGD 0.1, momentum 0.9:
2.7 -> 13 -> 7 within 10 steps). A rate further below the divergence point than REACH lies outside
that 2-4x band, and the sweep that reached REACH x past it without diverging says as much.

The NaNs of both runs are provoked on purpose, not numerics faults: they are not recorded on the
context for the numerics check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from nndoctor import batching, training
from nndoctor.context import Context
from nndoctor.probes import cost
from nndoctor.probes.step import INPUT_ELEMENTS  # a backward pass's input budget: large images get fewer samples
from nndoctor.result import Finding, PlotData, Status, Table

SAFETY = 3.0  # the suggestion stays at least this factor below the divergence point
REACH = 10.0  # the sweep goes at least this far past the configured rate, so a divergence there shows
SKIP_SHARE = 0.1  # the first tenth of the sweep is ignored for the suggestion (smoothing warm-up)
MIN_DROP = 0.05  # a sweep whose smoothed loss never falls 5% below its start found no working rate
COLD_STEPS = 10  # steps at the configured rate from init; blow-ups showed within 3 to 10 on the zoo
TABLE_POINTS = 10
# Optimizers that choose their own step length by line search or curvature: no range to find.
NO_LR_SCHEDULE = (torch.optim.LBFGS,)


@dataclass(frozen=True)
class Sweep:
    lrs: tuple[float, ...]  # the rate of each step with a finite loss
    smoothed: tuple[float, ...]  # the smoothed loss before each of those steps
    divergence_lr: float | None  # None: no divergence up to the last rate
    nonfinite: bool  # the sweep ended on a NaN/Inf loss
    settled: bool = False  # stopped before divergence: past REACH x the configured rate, suggestion settled

    @property
    def best(self) -> int:
        return _lowest(self.smoothed)


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    model = ctx.subject.fresh_model()
    optimizer = training.make_optimizer(ctx, model)
    rates = _group_rates(optimizer)
    if isinstance(optimizer, NO_LR_SCHEDULE) or rates is None:
        return Finding.skip(f"{type(optimizer).__name__} has no learning rate to sweep in every parameter group")
    configured = rates[0]
    most = int(thresholds["batch"])
    size = min(ctx.samples_within(INPUT_ELEMENTS, most=most), cost.samples_within_flops(ctx, float(thresholds["batch_flops"]), most=most))
    inputs, targets = ctx.batch(size)
    samples = batching.batch_size_of(inputs)
    sweep = _sweep(_Trainer(ctx, model, optimizer, rates, inputs, targets), thresholds)
    if not sweep.lrs:
        return Finding.skip("the loss is not finite at init, so no learning rate can be tested; see numerics")
    suggestion = _suggestion(sweep)
    past_divergence = sweep.divergence_lr is not None and configured >= sweep.divergence_lr
    # The sweep is over: its gradients and optimizer state go before a cold start trains a second copy.
    optimizer.zero_grad(set_to_none=True)
    optimizer.state.clear()
    cold = _cold_start(ctx, configured, inputs, targets) if _needs_cold_start(configured, suggestion, sweep) else None
    metrics = {
        "configured_lr": configured, "suggested_lr": suggestion, "divergence_lr": sweep.divergence_lr,
        "initial_loss": sweep.smoothed[0], "best_loss": sweep.smoothed[sweep.best], "best_lr": sweep.lrs[sweep.best],
        "steps": len(sweep.lrs), "samples": samples, "optimizer": type(optimizer).__name__,
        "cold_start_losses": list(cold) if cold is not None else None,
    }
    status, summary, codes = _judge(configured, suggestion, sweep, past_divergence, cold, thresholds)
    return Finding(
        status, summary, metrics, _evidence(sweep, suggestion, configured, cold, optimizer, samples, thresholds),
        tables=(_table(sweep),), fix=_fix(configured, suggestion, sweep, samples) if status is not Status.PASS else None,
        plots=(_plot(sweep, configured, suggestion),), codes=codes,
    )


class _Trainer:
    """Steps of the user's optimizer on one fixed batch, at a rate set before each step. The sweep's
    NaNs are provoked on purpose, so they are not recorded for the numerics check."""

    def __init__(self, ctx: Context, model: nn.Module, optimizer, rates: list[float], inputs: Any, targets: Any):
        self.ctx, self.model, self.optimizer, self.rates = ctx, model, optimizer, rates
        self.inputs, self.targets = inputs, targets

    def losses(self, schedule: Sequence[float]) -> Iterator[float]:
        """The loss before each step at the schedule's rates, the first one at init; ends after a
        non-finite loss. The step after the last loss the caller takes is never run."""
        self.ctx.seed_everything()
        self.model.train()
        for step, lr in enumerate(schedule):
            _set_rate(self.optimizer, lr, self.rates)
            loss = _objective(self.ctx, self.model, self.inputs, self.targets)
            value = float(loss.detach())
            yield value
            if not math.isfinite(value) or step == len(schedule) - 1:
                return
            if loss.requires_grad:  # else nothing trainable reaches the loss: it stays where it is
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()


def _group_rates(optimizer: torch.optim.Optimizer) -> list[float] | None:
    rates = [group.get("lr") for group in optimizer.param_groups]
    if not all(isinstance(r, (int, float, torch.Tensor)) for r in rates):
        return None
    return [float(r) for r in rates]


def _set_rate(optimizer: torch.optim.Optimizer, lr: float, rates: list[float]) -> None:
    """Set the first group's rate to ``lr`` and the others in their configured proportion."""
    for group, configured in zip(optimizer.param_groups, rates):
        value = lr * configured / rates[0] if rates[0] > 0 else lr
        if isinstance(group["lr"], torch.Tensor):  # a tensor lr (capturable/compiled setups) is updated in place
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def _schedule(thresholds: Mapping[str, Any], configured: float) -> list[float]:
    low, steps = float(thresholds["min_lr"]), int(thresholds["steps"])
    high = max(float(thresholds["max_lr"]), REACH * configured)
    return [low * (high / low) ** (i / max(steps - 1, 1)) for i in range(steps)]


def _sweep(trainer: _Trainer, thresholds: Mapping[str, Any]) -> Sweep:
    beta, factor = float(thresholds["smoothing"]), float(thresholds["diverge_factor"])
    reach = REACH * trainer.rates[0]
    schedule = _schedule(thresholds, trainer.rates[0])
    lrs: list[float] = []
    smoothed: list[float] = []
    average = 0.0
    for step, (lr, value) in enumerate(zip(schedule, trainer.losses(schedule))):
        if not math.isfinite(value):
            return Sweep(tuple(lrs), tuple(smoothed), lr if step else None, True)
        average = beta * average + (1 - beta) * value
        lrs.append(lr)
        smoothed.append(average / (1 - beta ** (step + 1)))
        if step and _diverged(smoothed[-1], min(smoothed), smoothed[0], factor):
            return Sweep(tuple(lrs), tuple(smoothed), lr, False)
        if lr >= reach and _settled(lrs, smoothed):
            return Sweep(tuple(lrs), tuple(smoothed), None, False, settled=True)
    return Sweep(tuple(lrs), tuple(smoothed), None, False)


def _diverged(loss: float, best: float, start: float, factor: float) -> bool:
    """Above the start, after falling MIN_DROP below it or rising to ``factor`` x the best loss. A
    loss that can be negative has no such scale: there only NaN/Inf counts."""
    if best <= 0 or loss <= start:
        return False
    return best <= (1 - MIN_DROP) * start or loss > factor * best


def _settled(lrs: list[float], smoothed: list[float]) -> bool:
    """No later rate can move the suggestion: the steepest descent lies SAFETY x below the current
    rate, so a divergence beyond it cannot cap the suggestion, and the loss has stayed positive and
    is now below the steepest drop, so it cannot fall more steeply later."""
    steepest = _steepest(smoothed)
    if steepest is None or min(smoothed) <= 0:
        return False
    index, drop = steepest
    return SAFETY * lrs[index] <= lrs[-1] and smoothed[-1] < drop


def _needs_cold_start(configured: float, suggestion: float | None, sweep: Sweep) -> bool:
    """Rates up to the suggestion lie well inside what the sweep survived, and a cold start diverges
    at most ~4x below the sweep: only a rate above the suggestion and within REACH below the
    divergence point is tried from init."""
    if suggestion is not None and configured <= suggestion:
        return False
    return sweep.divergence_lr is not None and configured < sweep.divergence_lr < REACH * configured


def _cold_start(ctx: Context, configured: float, inputs: Any, targets: Any) -> tuple[float, ...]:
    """COLD_STEPS steps at the configured rate from the initial weights, on the sweep's batch."""
    model = ctx.subject.fresh_model()
    optimizer = training.make_optimizer(ctx, model)
    trainer = _Trainer(ctx, model, optimizer, _group_rates(optimizer), inputs, targets)
    return tuple(trainer.losses([configured] * (COLD_STEPS + 1)))


def _objective(ctx: Context, model: nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
    """What the user's training minimizes: the loss, plus the model file's penalty if it has one."""
    subject = ctx.subject
    loss = subject.compute_loss(subject.predict(model, inputs), targets)
    return loss + subject.extra_penalty(model) if subject.extra_penalty is not None else loss


def _suggestion(sweep: Sweep) -> float | None:
    """The steepest descent, kept SAFETY x below the divergence point; None if the loss never fell."""
    steepest = _steepest(sweep.smoothed)
    if steepest is None:
        return None
    rate = sweep.lrs[steepest[0]]
    return rate if sweep.divergence_lr is None else min(rate, sweep.divergence_lr / SAFETY)


def _steepest(curve: Sequence[float]) -> tuple[int, float] | None:
    """Where the smoothed loss falls fastest against log(lr) (the schedule is exponential, so
    against the step index), between the warm-up and the best point, and by how much over the two
    steps around it; None if the loss never fell MIN_DROP below its start."""
    first, last = max(1, round(SKIP_SHARE * len(curve))), _lowest(curve)
    if last - first < 2 or curve[last] > (1 - MIN_DROP) * curve[0]:
        return None
    index = min(range(first, last), key=lambda i: curve[i + 1] - curve[i - 1])
    return index, curve[index - 1] - curve[index + 1]


def _lowest(curve: Sequence[float]) -> int:
    return min(range(len(curve)), key=curve.__getitem__)


def _judge(
    configured: float, suggestion: float | None, sweep: Sweep, past_divergence: bool, cold: tuple[float, ...] | None, thresholds,
) -> tuple[Status, str, tuple[str, ...]]:
    where = _range_text(suggestion, sweep)
    if past_divergence:
        return Status.FAIL, f"lr {configured:.3g} is past the divergence point: {where}", ("past_divergence",)
    if cold is not None and _exploded(cold, float(thresholds["explode_factor"])):
        return Status.FAIL, (
            f"lr {configured:.3g} diverges from init: within {len(cold) - 1} steps at it the loss went from "
            f"{cold[0]:.3g} to {_peak(cold):.3g}; {where}"
        ), ("diverges_from_init",)
    if suggestion is None:
        return Status.WARN, (
            f"lr {configured:.3g}: no learning rate from {sweep.lrs[0]:.0e} to {sweep.lrs[-1]:.2g} lowered the loss "
            f"(smoothed {sweep.smoothed[0]:.3g} at the start, {sweep.smoothed[sweep.best]:.3g} at best), "
            "so the learning rate is not what stops training"
        ), ("no_working_rate",)
    if configured == 0:
        return Status.WARN, f"lr is 0, so the weights never move: {where}", ("zero_lr",)
    if configured <= suggestion / float(thresholds["low_factor"]):
        return Status.WARN, f"lr {configured:.3g} is {suggestion / configured:.0f}x below the suggestion: {where}", ("too_low",)
    return Status.PASS, f"lr {configured:.3g} is in the working range: {where}", ()


def _exploded(cold: tuple[float, ...], factor: float) -> bool:
    """NaN/Inf, or a loss at least ``factor`` x the initial one at any step."""
    return not math.isfinite(cold[-1]) or (cold[0] > 0 and max(cold) >= factor * cold[0])


def _peak(losses: tuple[float, ...]) -> float:
    return losses[-1] if not math.isfinite(losses[-1]) else max(losses)


def _range_text(suggestion: float | None, sweep: Sweep) -> str:
    suggested = f"suggested {suggestion:.2g}" if suggestion is not None else "no suggestion"
    diverges = (
        f"diverges from {sweep.divergence_lr:.2g}" if sweep.divergence_lr is not None
        else f"no divergence up to {sweep.lrs[-1]:.2g}"
    )
    return f"{suggested}, {diverges}"


def _evidence(sweep: Sweep, suggestion, configured: float, cold, optimizer, samples: int, thresholds) -> tuple[str, ...]:
    lines = [
        f"{type(optimizer).__name__} on {len(optimizer.param_groups)} parameter group(s), configured lr {configured:.3g}; "
        f"{len(sweep.lrs)} steps from lr {sweep.lrs[0]:.0e} on a fixed batch of {samples} samples",
        f"smoothed loss {sweep.smoothed[0]:.4g} at the start, best {sweep.smoothed[sweep.best]:.4g} at lr {sweep.lrs[sweep.best]:.2g}",
    ]
    if sweep.divergence_lr is not None:
        lines.append(f"diverged at lr {sweep.divergence_lr:.2g}: {_divergence_text(sweep, float(thresholds['diverge_factor']))}")
    if sweep.settled:
        lines.append(
            f"stopped at lr {sweep.lrs[-1]:.2g}, {REACH:g}x past the configured rate, with the loss below its steepest "
            "drop: higher rates could only refine the divergence point"
        )
    if suggestion is not None:
        lines.append(f"steepest descent of the smoothed loss at lr {suggestion:.2g} (kept {SAFETY:g}x below divergence)")
    at_configured = _loss_at(sweep, configured)
    if at_configured is not None:
        lines.append(f"smoothed loss when the sweep passed lr {configured:.3g}: {at_configured:.4g}")
    if cold is not None:
        lines.append(
            f"{len(cold) - 1} steps at lr {configured:.3g} from init: loss {cold[0]:.4g} -> {cold[-1]:.4g} "
            f"(highest {_peak(cold):.4g})"
        )
    return tuple(lines)


def _divergence_text(sweep: Sweep, factor: float) -> str:
    if sweep.nonfinite:
        return "the loss turned NaN/Inf"
    start, best, last = sweep.smoothed[0], sweep.smoothed[sweep.best], sweep.smoothed[-1]
    if last > factor * best:
        return f"the smoothed loss {last:.4g} exceeded {factor:g}x its best"
    return f"the smoothed loss climbed back from {best:.4g} to {last:.4g}, above its start {start:.4g}"


def _loss_at(sweep: Sweep, lr: float) -> float | None:
    """The smoothed loss at the sweep's first rate at or above ``lr``, if the sweep got there."""
    return next((loss for rate, loss in zip(sweep.lrs, sweep.smoothed) if rate >= lr), None)


def _table(sweep: Sweep) -> Table:
    n = len(sweep.lrs)
    picks = sorted({round(i * (n - 1) / (TABLE_POINTS - 1)) for i in range(TABLE_POINTS)})
    return Table("Learning-rate sweep", ("lr", "smoothed loss"), tuple((sweep.lrs[i], sweep.smoothed[i]) for i in picks))


def _fix(configured: float, suggestion: float | None, sweep: Sweep, samples: int) -> str:
    diverges = f"it diverges from {sweep.divergence_lr:.2g}" if sweep.divergence_lr is not None else ""
    if suggestion is None:
        return (
            f"No learning rate lowered the loss on {samples} samples: look for the cause with "
            "overfit_small_batch, gradient_flow and initial_loss" + (f"; {diverges}." if diverges else ".")
        )
    direction = "Lower" if configured > suggestion else "Raise"
    return (
        f"{direction} the learning rate from {configured:.3g} to about {suggestion:.1g}, where the loss fell fastest"
        + (f"; {diverges}." if diverges else ".")
    )


def _plot(sweep: Sweep, configured: float, suggestion: float | None) -> PlotData:
    low, high = min(sweep.smoothed), max(sweep.smoothed)
    markers = [(f"configured lr {configured:.2g}", configured)]
    if suggestion is not None:
        markers.append((f"suggested lr {suggestion:.2g}", suggestion))
    if sweep.divergence_lr is not None:
        markers.append((f"divergence {sweep.divergence_lr:.2g}", sweep.divergence_lr))
    series = [("smoothed loss", sweep.lrs, sweep.smoothed)]
    series += [(label, (lr, lr), (low, high)) for label, lr in markers if lr > 0]
    return PlotData(
        name="lr_range", title="Learning-rate range test", xlabel="learning rate", ylabel="smoothed loss",
        series=tuple(series), log_x=True,
    )
