"""lr_schedule: is the learning rate the real loop applied sensible over the observed steps?

Judged per optimizer and parameter group from the LR each step applied: collapsed toward 0 for a
large share of the steps (annealing schedules reach ~0 only in their last few percent), touching ~0
and then climbing back (a cosine stepped past its end), the LR multiplied in twice (applied LR =
initial LR squared: a LambdaLR returning lr * factor), or still climbing past large values.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.loop import NOT_OBSERVED
from nndoctor.result import Finding, Status

SQUARED_TOLERANCE = 3.0  # applied peak within 3x of initial_lr ** 2
SQUARED_MAX_LR = 0.05  # above this, lr and lr ** 2 are too close to tell apart
REBOUND = 0.5  # climbing back above half the peak after a collapse
LARGE_LR = 1.0


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    if ctx.loop is None:
        return Finding.skip(NOT_OBSERVED)
    fraction = float(thresholds["collapse_fraction"])
    problems: list[str] = []
    codes: list[str] = []
    metrics: dict[str, Any] = {}
    for info in ctx.loop.optimizers:
        steps = ctx.loop.steps_of(info.name)
        for group, settings in enumerate(info.groups):
            lrs = [s.lrs[group] for s in steps if group < len(s.lrs)]
            if not lrs:
                continue
            where = info.name if len(info.groups) == 1 else f"{info.name} group {group}"
            peak = max(lrs)
            metrics[where] = {"first": lrs[0], "peak": peak, "last": lrs[-1], "steps": len(lrs)}
            initial = settings.get("initial_lr")
            if isinstance(initial, float) and 0 < initial < SQUARED_MAX_LR and peak > 0 and \
                    abs(math.log(peak / initial**2)) < math.log(SQUARED_TOLERANCE):
                problems.append(f"{where} applies lr {peak:.3g}, the square of its set lr {initial:g}: the LR is "
                                "multiplied in twice (a LambdaLR whose function returns lr * factor)")
                codes.append("squared")
                continue
            # Only after the LR first reached its peak: a warm-up starts near 0 on purpose.
            top = lrs.index(peak)
            collapsed = [i for i, lr in enumerate(lrs) if i > top and lr < fraction * peak]
            share = len(collapsed) / len(lrs)
            metrics[where]["collapsed_share"] = share
            rebound = _rebound(lrs, fraction * peak, REBOUND * peak, top)
            if rebound is not None:
                problems.append(f"{where}'s LR fell to ~0 at step {rebound[0] + 1} and climbed back to {lrs[rebound[1]]:.3g} "
                                f"by step {rebound[1] + 1}: the schedule ran past its end (a per-epoch cosine stepped per batch?)")
                codes.append("past_end")
            elif share >= float(thresholds["collapsed_share_fail"]):
                problems.append(f"{where}'s LR fell below {fraction:g} of its peak {peak:.3g} by step {collapsed[0] + 1} and "
                                f"stayed there for {share:.0%} of the {len(lrs)} observed steps (last {lrs[-1]:.3g}): a "
                                "per-epoch schedule stepped per batch?")
                codes.append("collapsed")
            elif lrs[-1] >= peak and lrs[-1] > float(thresholds["growth_warn"]) * lrs[0] and lrs[-1] > LARGE_LR:
                problems.append(f"{where}'s LR grew from {lrs[0]:.3g} to {lrs[-1]:.3g} and is still rising")
                codes.append("growing")
    if problems:
        status = Status.WARN if set(codes) == {"growing"} else Status.FAIL
        return Finding(status, "; ".join(problems), metrics, codes=tuple(dict.fromkeys(codes)))
    described = ", ".join(f"{k}: {v['first']:.3g} -> {v['last']:.3g}" for k, v in metrics.items())
    return Finding(Status.PASS, f"the applied learning rate stays in use over the observed steps ({described})", metrics)


def _rebound(lrs: list[float], low: float, high: float, top: int) -> tuple[int, int] | None:
    """(step at ~0, step back above ``high``) when the LR, after its first peak at ``top``, fell
    to ~0 and climbed back gradually (over more than two steps: a warm restart jumps back at once
    and is on purpose; a warm-up climbs from ~0 before any peak)."""
    bottom = next((i for i in range(top, len(lrs)) if lrs[i] < low), None)
    if bottom is None:
        return None
    back = next((i for i in range(bottom, len(lrs)) if lrs[i] > high), None)
    if back is None or back - bottom <= 2:
        return None
    return bottom, back
