"""loss_progress: does the loss fall in the user's own loop?

The loss backpropagated per optimizer step (summed over accumulation passes) is classified the
way the overfit check classifies its curves (nndoctor/curves.py): exploding, rising, oscillating,
or barely moving. Clipping is judged from the two gradient norms the observer reads: after the
last backward pass and at the step; their ratio is the share of the gradient clipping kept.

Adversarial training (a GAN: one model's output is fed to another, each stepped by its own
optimizer on its own loss) is a game, not a minimization: each loss is held up by the other
player's progress, so neither is expected to fall (Goodfellow et al. 2014; Arjovsky & Bottou 2017:
the losses do not track sample quality). There only a blow-up (NaN/Inf, explosion) is judged.
Optimizers stepped on one shared loss (an encoder and a decoder with two optimizers, one
backward) see the same loss series and are judged as usual.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Mapping

from nndoctor import curves
from nndoctor.context import Context
from nndoctor.loop import NOT_OBSERVED
from nndoctor.result import Finding, Status

SOUND_PROGRESS = 0.5  # a loss that lost half its value over the observed steps is falling, however it wiggles
ACTIVE = 0.99  # a clip ratio below this: clipping changed the gradient
# Their steps do not scale with the gradient's size (Kingma & Ba 2015, "Adam": invariant to
# rescaling the gradient), so clipping the norm barely changes what they apply.
ADAPTIVE = {"Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop", "Adagrad", "Adadelta", "SparseAdam", "Adafactor"}


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    if ctx.loop is None:
        return Finding.skip(NOT_OBSERVED)
    problems: list[tuple[Status, str, str]] = []
    metrics: dict[str, Any] = {}
    judged = 0
    adversarial = _adversarial(ctx.loop)
    for info in ctx.loop.optimizers:
        steps = ctx.loop.steps_of(info.name)
        series = [sum(s.losses) for s in steps if s.losses]
        clip = None if info.cls in ADAPTIVE else _clipping(steps, thresholds)
        if clip is not None:
            problems.append(clip)
        if _gradientless(steps):
            problems.append((Status.FAIL, f"{info.name} steps with no gradient: the loss is backpropagated but every "
                             f"sampled gradient norm of its parameters is 0 (a loss rebuilt from loss.item() or "
                             f"computed under no_grad/detach)", "no_gradient"))
        if len(series) < int(thresholds["min_steps"]):
            continue
        judged += 1
        reading = curves.classify(series, target=0.0, floor=_floor(series))
        metrics[info.name] = {"pattern": reading.pattern.value, "initial": series[0], "level": reading.level,
                              "progress": reading.progress, "steps": len(series)}
        verdicts = _judge(info.name, reading, series, float(thresholds["min_progress"]))
        problems.extend(v for v in verdicts if info.name not in adversarial or v[2] == "exploding")
    if problems:
        status = Status.FAIL if any(p[0] is Status.FAIL for p in problems) else Status.WARN
        return Finding(status, "; ".join(p[1] for p in problems), metrics, codes=tuple(dict.fromkeys(p[2] for p in problems)))
    if not judged:
        return Finding.skip(f"fewer than {thresholds['min_steps']} steps with a loss were observed")
    described = ", ".join(f"{k}: {v['initial']:.3g} -> {v['level']:.3g} over {v['steps']} steps" for k, v in metrics.items())
    if adversarial:
        metrics["adversarial"] = sorted(adversarial)
        return Finding(Status.PASS, f"adversarial training ({', '.join(sorted(adversarial))} step models that feed each "
                       f"other on their own losses): losses of a game are not expected to fall, none blew up ({described})",
                       metrics, evidence=tuple(f"{a}'s output is fed to {b}" for a, b in ctx.loop.feeds))
    return Finding(Status.PASS, f"the loss falls in the real loop ({described})", metrics)


def _adversarial(loop) -> set[str]:
    """Optimizers of models wired as players: one model's output fed to another, the two stepped
    by different optimizers on different loss series (each its own backward pass)."""
    owners = {m.name: set(m.optimizers) for m in loop.models}
    series = {o.name: [sum(s.losses) for s in loop.steps_of(o.name) if s.losses] for o in loop.optimizers}
    players: set[str] = set()
    for source, sink in loop.feeds:
        for a in owners.get(source, ()):
            for b in owners.get(sink, ()):
                if a != b and series.get(a) and series[a] != series.get(b):
                    players.update((a, b))
    return players


def _judge(name: str, reading: curves.Reading, series: list[float], min_progress: float) -> list[tuple[Status, str, str]]:
    pattern = reading.pattern
    if pattern is curves.Pattern.EXPLODING:
        at = f" (NaN/Inf at step {reading.nonfinite_step + 1})" if reading.nonfinite_step is not None else ""
        return [(Status.FAIL, f"{name}'s loss blew up from {series[0]:.3g}{at}", "exploding")]
    if reading.progress >= SOUND_PROGRESS:  # near 0 the log-scale classification reads noise as bouncing
        return []
    if pattern is curves.Pattern.RISING:
        return [(Status.FAIL, f"{name}'s loss rose from {series[0]:.3g} to {reading.level:.3g}", "rising")]
    if pattern is curves.Pattern.OSCILLATING:
        return [(Status.WARN, f"{name}'s loss bounces without settling (from {series[0]:.3g}, now about {reading.level:.3g})",
                 "oscillating")]
    if reading.progress < min_progress:
        return [(Status.FAIL, f"{name}'s loss barely moved over {len(series)} steps ({series[0]:.3g} -> {reading.level:.3g}, "
                 f"{reading.progress:.0%} of it removed)", "stalled")]
    return []


def _gradientless(steps) -> bool:
    """Losses were backpropagated, yet every sampled gradient norm at the step is 0 (or the
    gradient is absent): backward never reached these parameters."""
    norms = [s.grad_norm_step for s in steps if s.losses and s.grad_norm_step is not None]
    return bool(norms) and all(n == 0 for n in norms)


def _clipping(steps, thresholds: Mapping[str, Any]) -> tuple[Status, str, str] | None:
    ratios = [s.clip_ratio for s in steps if s.clip_ratio is not None]
    if not ratios:
        return None
    active = sum(1 for r in ratios if r < ACTIVE) / len(ratios)
    median = statistics.median(ratios)
    if active < float(thresholds["clip_active_share"]):
        return None
    if median < float(thresholds["clip_fail"]):
        status = Status.FAIL
    elif median < float(thresholds["clip_warn"]):
        status = Status.WARN
    else:
        return None
    return (status, f"gradient clipping is active on {active:.0%} of steps and keeps a median {median:.2g} of the gradient "
            f"(norm {statistics.median(s.grad_norm_backward for s in steps if s.clip_ratio is not None):.3g} cut to "
            f"{statistics.median(s.grad_norm_step for s in steps if s.clip_ratio is not None):.3g})", "always_clipped")


def _floor(series: list[float]) -> float:
    """0 for the usual non-negative losses; a loss that goes negative (a log-likelihood, a GAN's
    critic) has no known floor, so its lowest observed value stands in."""
    finite = [v for v in series if math.isfinite(v)]
    return min(0.0, min(finite)) if finite else 0.0
