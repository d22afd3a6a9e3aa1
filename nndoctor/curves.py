"""How a training loss curve behaved, from the numbers alone: pure functions, no torch.

A run that should have driven the loss to (near) its floor but did not failed in one of a few
recognisable ways (seed 002, Karpathy, Tobin): the loss rose, blew up, bounced, stalled, dropped
steeply and then stopped, or was still falling when the budget ran out. ``classify`` names the way
from measurements that do not depend on the loss's units:

* the *excess* of the loss over its floor (the lowest value the loss can take, 0 for most losses)
  is what training removes, so every level is judged as a share of the initial excess;
* where the curve is heading comes from the last quarter of the run: log(excess) fitted by least
  squares (robust to step-to-step noise) says how much of the excess that quarter removed, and
  the fits of its two halves say whether the fall is levelling off (an approach to a level above
  the floor) or keeps its pace (slow but healthy), and at what rate, to project the steps left;
* oscillation is judged from residuals around that fit and from how often the direction flips.
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, replace
from typing import Sequence

TAIL_SHARE = 0.25  # the last quarter of the run says where the curve is heading
TINY_EXCESS = 1e-9  # excess (as a share of the initial one) treated as "at the floor"
RISE_MARGIN = 0.1  # ending more than 10% above the initial excess counts as having risen
STEADY_RISE = 0.8  # share of steps that went up for a rise to be steady (not a blow-up)
ACCURACY_DROP = 0.1  # accuracy falling this much while the loss falls: the loss rewards errors
OSCILLATION_JITTER = 0.1  # RMS residual of log(excess) around the tail fit, ~ +-10% swings
OSCILLATION_FLIPS = 0.3  # share of consecutive steps that reverse direction
FALLING_DROP = 0.05  # "still falling": the last quarter removed at least 5% of the excess ...
LEVELLING = 0.25  # ... and its second half kept at least a quarter of the first half's pace
STEEP_SHARE = 0.6  # share of the total log-drop made within the steep window
MIN_DROP = 0.3  # a "steep drop" must remove at least 30% of the initial excess
CONSTANT_MARGIN = 0.05  # within 5% (of the constant-to-floor gap) of the constant's loss
BAD_INIT_FACTOR = 2.0  # an initial loss this many times the constant's: a badly scaled init


class Pattern(str, enum.Enum):
    EXPLODING = "exploding"  # NaN/Inf or growth by orders of magnitude: LR too high, numerics
    RISING = "rising"  # steady climb, or a loss that rewards errors (falls while accuracy falls,
    # or dives without bound below its floor): a sign error
    OSCILLATING = "oscillating"  # bounces without settling: LR too high, contradictory labels
    STILL_FALLING = "still_falling"  # healthy but slow: the budget ran out before the target
    DROP_THEN_FLAT = "drop_then_flat"  # steep early drop, then stuck: inadequate initialization
    PLATEAU = "plateau"  # barely moves: LR too low, pipeline/loss bug, dead network

    @property
    def label(self) -> str:
        return {
            Pattern.DROP_THEN_FLAT: "steep drop then flat",
            Pattern.STILL_FALLING: "still falling",
        }.get(self, self.value)


@dataclass(frozen=True)
class Reading:
    """The measurements behind a pattern; shares are of the initial excess over the floor."""

    pattern: Pattern
    steps: int  # steps run (finite part of the curve)
    initial: float
    level: float  # where the curve ended: the tail fit's value at the last step
    best: float
    peak: float
    progress: float  # share of the initial excess removed by the end (negative: it rose)
    tail_drop: float  # share of the excess the last quarter removed (negative: it grew)
    pace: float  # log-rate of fall in the tail's second half over its first half's (<1: slowing)
    jitter: float  # RMS residual of log(excess) around the tail fit
    flips: float  # share of direction reversals over the tail
    steps_to_target: float | None  # further steps to the target at the recent rate, if falling
    nonfinite_step: int | None = None


def classify(
    losses: Sequence[float],
    target: float,
    floor: float = 0.0,
    accuracies: Sequence[float] = (),
    constant_level: float | None = None,
    steep_window: int = 40,
    explode_factor: float = 10.0,
) -> Reading:
    """Name how a curve that missed ``target`` failed.

    ``floor`` is the lowest loss reachable; ``accuracies`` (optional, same length) reveal a loss
    that falls while predictions get worse; ``constant_level`` is the loss of the best
    input-independent prediction, which a model that learns nothing from its inputs never beats.
    """
    nonfinite_step = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    finite = list(losses[:nonfinite_step] if nonfinite_step is not None else losses)
    if not finite:
        finite = [math.nan]
    excess = _excess(finite, floor)
    logs = [math.log(e) for e in excess]
    recent = logs[-_tail(len(logs), steep_window):]
    slope, intercept, jitter = _line_fit(recent)
    level = floor + math.exp(intercept + slope * (len(recent) - 1))
    half = len(recent) // 2
    earlier_rate, recent_rate = -_line_fit(recent[: half + 1])[0], -_line_fit(recent[half:])[0]
    reading = Reading(
        pattern=Pattern.PLATEAU,
        steps=len(finite) - 1,
        initial=finite[0],
        level=level,
        best=min(finite),
        peak=max(finite),
        progress=1 - (level - floor) / excess[0],
        tail_drop=1 - math.exp(slope * (len(recent) - 1)),
        pace=recent_rate / earlier_rate if earlier_rate > 0 else 0.0,
        jitter=jitter,
        flips=_flip_share(finite[-len(recent):]),
        steps_to_target=_steps_to(level - floor, target - floor, recent_rate),
        nonfinite_step=nonfinite_step,
    )
    pattern = _pattern(reading, excess, logs, floor, accuracies, constant_level, steep_window, explode_factor)
    return replace(reading, pattern=pattern)


def _pattern(
    r: Reading,
    excess: list[float],
    logs: list[float],
    floor: float,
    accuracies: Sequence[float],
    constant_level: float | None,
    steep_window: int,
    explode_factor: float,
) -> Pattern:
    if r.nonfinite_step is not None:
        return Pattern.EXPLODING
    if accuracy_fell(accuracies, r.initial, r.level) or unbounded_below(r.initial, r.best, floor, explode_factor):
        return Pattern.RISING
    if r.progress < -RISE_MARGIN:
        if _up_share(excess) >= STEADY_RISE:
            return Pattern.RISING
        return Pattern.EXPLODING if max(excess) >= explode_factor * excess[0] else Pattern.OSCILLATING
    if max(excess) >= explode_factor * excess[0]:
        return Pattern.EXPLODING
    if r.jitter >= OSCILLATION_JITTER and r.flips >= OSCILLATION_FLIPS:
        return Pattern.OSCILLATING
    if r.tail_drop >= FALLING_DROP and r.pace >= LEVELLING:
        return Pattern.STILL_FALLING
    if _steep_then_flat(logs, steep_window) and not _only_learned_constant(r, constant_level, floor):
        return Pattern.DROP_THEN_FLAT
    return Pattern.PLATEAU


def never_beat(best: float, constant_level: float, floor: float = 0.0) -> bool:
    """Did the loss stay at (or above) the loss of the best constant prediction? A model whose
    outputs do not depend on its inputs can do no better."""
    return best >= constant_level - CONSTANT_MARGIN * max(constant_level - floor, 0.0)


def unbounded_below(initial: float, best: float, floor: float, factor: float = 10.0) -> bool:
    """The loss dived below its floor by ``factor`` times its initial distance from it: a loss
    that is bounded below cannot, so this one rewards something other than fitting the targets
    (e.g. it returns -CrossEntropy and grows the logits without limit)."""
    return best < floor and floor - best >= factor * max(abs(initial - floor), 1e-12)


def _only_learned_constant(r: Reading, constant_level: float | None, floor: float) -> bool:
    """The drop only reached the best constant prediction's loss from a start near it: learning
    the output bias (class prior, target mean), not a badly scaled initialization being undone.
    Far above it means confidently wrong at init (initial_loss fails at 2x the chance level)."""
    if constant_level is None or not never_beat(r.best, constant_level, floor):
        return False
    return r.initial - floor < BAD_INIT_FACTOR * (constant_level - floor)


def _excess(losses: list[float], floor: float) -> list[float]:
    """Loss above the floor, kept positive so that logs exist (values at or below the floor
    count as a tiny share of the initial excess)."""
    first = losses[0] - floor
    scale = first if first > 0 else max(abs(v - floor) for v in losses) or 1.0
    return [max(v - floor, TINY_EXCESS * scale) for v in losses]


def _tail(n: int, steep_window: int) -> int:
    """Points in the tail: the last quarter of the run, at least a steep window's worth (or all)."""
    return min(n, max(2, math.ceil(n * TAIL_SHARE), steep_window))


def _line_fit(ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares line through (i, ys[i]): slope per step, intercept and RMS residual."""
    n = len(ys)
    if n < 2:
        return 0.0, ys[0], 0.0
    mean_x, mean_y = (n - 1) / 2, sum(ys) / n
    slope = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys)) / sum((i - mean_x) ** 2 for i in range(n))
    intercept = mean_y - slope * mean_x
    residual = math.sqrt(sum((y - intercept - slope * i) ** 2 for i, y in enumerate(ys)) / n)
    return slope, intercept, residual


def _steps_to(excess_now: float, excess_target: float, rate: float) -> float | None:
    """Further steps to bring the excess down to the target's at a constant log-rate; None when
    it is not falling (or the target is at or below the floor)."""
    if excess_now <= excess_target:
        return 0.0
    if rate <= 0 or excess_target <= 0:
        return None
    return math.log(excess_now / excess_target) / rate


def _flip_share(values: Sequence[float]) -> float:
    """Share of consecutive moves that reverse direction (moves below float noise ignored)."""
    scale = max(abs(v) for v in values) or 1.0
    moves = [b - a for a, b in zip(values, values[1:]) if abs(b - a) > 1e-6 * scale]
    if len(moves) < 2:
        return 0.0
    return sum((a > 0) != (b > 0) for a, b in zip(moves, moves[1:])) / (len(moves) - 1)


def _up_share(values: Sequence[float]) -> float:
    moves = [b - a for a, b in zip(values, values[1:])]
    return sum(m > 0 for m in moves) / len(moves) if moves else 0.0


def accuracy_fell(accuracies: Sequence[float], initial: float, level: float) -> bool:
    """The loss went down (from ``initial`` to ``level``) while predictions got clearly worse:
    the loss is pointed the wrong way (e.g. it returns -CrossEntropy)."""
    if len(accuracies) < 2:
        return False
    tail = accuracies[-_tail(len(accuracies), 1):]
    return level < initial and statistics.median(tail) <= accuracies[0] - ACCURACY_DROP


def _steep_then_flat(logs: list[float], steep_window: int) -> bool:
    """Most of the log-drop happened within the first ``steep_window`` steps and it was large:
    seed 002's "loss drops steeply after a short period of training, before stabilizing"."""
    if len(logs) <= steep_window:
        return False
    total = logs[0] - min(logs)
    early = logs[0] - min(logs[: steep_window + 1])
    return total >= -math.log(1 - MIN_DROP) and early >= STEEP_SHARE * total


def sample_points(steps: int, count: int = 6) -> list[int]:
    """A few step indices spread roughly log-uniformly over 0..steps, for compact evidence."""
    if steps <= 0:
        return [0]
    points = {0, steps}
    for k in range(1, count - 1):
        points.add(round(steps ** (k / (count - 1))))
    return sorted(points)


# Stopping a run whose goal is out of reach (seed 002's overfit test need not run its whole budget
# to fail): judged only after JUDGE_AFTER steps and a JUDGE_SHARE of the budget, from the pace of
# the run's last half, smoothed by medians of its first and last tenths.
JUDGE_AFTER = 200
JUDGE_SHARE = 0.3
REACH_MARGIN = 3.0  # the goal is out of reach even at three times the recent pace


def out_of_reach(losses: Sequence[float], goal: float, floor: float, budget: int) -> bool:
    """Whether a run at step len(losses) - 1 of ``budget`` cannot reach loss ``goal``: its log
    excess over the floor, falling at REACH_MARGIN times the pace of the run's last half (an
    exponential decay, optimistic for a curve that is levelling off), would still end above the
    goal's. A rising or flat last half is out of reach at once; a run that falls steadily at a
    pace that gets there in time never is."""
    step = len(losses) - 1
    if step < max(JUDGE_AFTER, JUDGE_SHARE * budget) or goal <= floor:
        return False
    half = losses[len(losses) // 2:]
    tenth = max(1, len(half) // 10)
    start = statistics.median(half[:tenth]) - floor
    end = statistics.median(half[-tenth:]) - floor
    if start <= 0 or end <= 0:
        return False
    pace = (math.log(start) - math.log(end)) / (len(half) - tenth)  # log-excess removed per step
    projected = math.log(end) - REACH_MARGIN * max(pace, 0.0) * (budget - step)
    return projected > math.log(goal - floor)

