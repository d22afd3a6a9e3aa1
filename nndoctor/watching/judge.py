"""The watcher's judgement: plain numbers and small tensors in, events out. Kept apart from the
hooks (nndoctor.watching.watcher) so that each rule reads on its own and is tested on real runs.

Each problem is reported once per place (code and module): the first sighting is the news; the
timeline keeps the count of later sightings.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from nndoctor.result import Status
from nndoctor.watching.events import WatchEvent
from nndoctor.watching.settings import WatchSettings

MAX_LOSSES = 200_000  # losses kept for the timeline; older ones are thinned beyond it


@dataclass(frozen=True)
class LrChange:
    step: int
    before: float
    after: float


@dataclass(frozen=True)
class OutputStats:
    """What one sampled batch's output says, reduced to a few numbers per class."""

    pinned_share: float | None  # rows whose top probability is exactly 1 (probability outputs only)
    wrong_share: float | None  # rows whose right class has probability exactly 0
    logit_mean_abs: float | None
    logit_spread: float | None  # mean std across classes within a row
    predicted: torch.Tensor | None  # (K,) counts of argmax predictions
    labelled: torch.Tensor | None  # (K,) counts of labels
    probability_sum: torch.Tensor | None  # (K,) summed probabilities


def output_stats(output: torch.Tensor, targets: torch.Tensor | None, logits: torch.Tensor | None) -> OutputStats | None:
    """Statistics of a classifier's (N, K) output: probabilities when rows lie in [0, 1] and sum to
    1 (the model ends in a softmax), else logits. ``logits``: the softmax's input, when captured."""
    if output.dim() != 2 or output.shape[1] < 2 or not output.dtype.is_floating_point or output.shape[0] == 0:
        return None
    out = output.detach().float()
    if not torch.isfinite(out).all():
        return None  # numerics reports it
    rows = out.sum(dim=1)
    is_probability = bool(out.min() >= 0 and out.max() <= 1 and torch.allclose(rows, torch.ones_like(rows), atol=1e-3))
    probabilities = out if is_probability else torch.softmax(out, dim=1)
    if logits is None and not is_probability:
        logits = out
    k = out.shape[1]
    labels = None
    if targets is not None and targets.dim() == 1 and len(targets) == len(out) and not targets.dtype.is_floating_point:
        labels = targets.detach().to(out.device).long()
        if labels.min() < 0 or labels.max() >= k:
            labels = None  # ignore_index or a different task: no judgement against labels
    pinned = wrong = None
    if is_probability:
        pinned = float((out.max(dim=1).values == 1.0).float().mean())
        if labels is not None:
            wrong = float((out.gather(1, labels[:, None]).squeeze(1) == 0.0).float().mean())
    mean_abs = spread = None
    if logits is not None and logits.shape == out.shape and torch.isfinite(logits).all():
        logits = logits.detach().float()
        mean_abs = float(logits.abs().mean())
        spread = float(logits.std(dim=1).mean())
    predicted = torch.bincount(probabilities.argmax(dim=1), minlength=k).cpu()
    labelled = torch.bincount(labels, minlength=k).cpu() if labels is not None else None
    return OutputStats(pinned, wrong, mean_abs, spread, predicted, labelled, probabilities.sum(dim=0).cpu())


def alive_units(output: torch.Tensor) -> torch.Tensor | None:
    """Which units of a ReLU layer (features, or channels of a conv map) fire on some row of the
    batch; None for outputs without a batch and unit axis."""
    out = output.detach()
    if out.dim() < 2:
        return None
    alive = (out > 0).flatten(2).any(dim=2) if out.dim() > 2 else (out > 0)
    return alive.any(dim=0)


def saturated_share(output: torch.Tensor, kind: str) -> float:
    out = output.detach().float()
    if kind == "tanh":
        return float((out.abs() > 0.99).float().mean())
    return float(((out < 0.01) | (out > 0.99)).float().mean())


def _median(values) -> float:
    return statistics.median(values)


class Judge:
    def __init__(self, settings: WatchSettings, emit: Callable[[WatchEvent], None]):
        self.settings = settings
        self._emit = emit
        self._seen: dict[tuple[str, str | None], int] = {}  # (code, module) -> sightings
        t = settings.of("loss_progress")
        self.losses: list[tuple[int, float]] = []
        self._recent: deque[float] = deque(maxlen=int(t["window"]))
        self._level: deque[float] = deque(maxlen=int(t["diverge_window"]))
        self.start_level: float | None = None
        self.best_level: float | None = None
        self.lrs: list[tuple[int, float]] = []
        self.lr_changes: list[LrChange] = []
        self._rising_min: float | None = None  # lowest loss level since the learning rate last went up
        self._rising_until = -1  # judge the loss against the rise until this step
        self._rise_from: float | None = None
        self._grad_base: dict[str, list[float]] = {}
        self._total_base: list[float] = []
        self._high_updates = 0
        self._weight_start: dict[str, float] = {}
        self._activation_start: dict[str, float] = {}
        self._outputs: deque[OutputStats] = deque()

    # -- bookkeeping -------------------------------------------------------------------------
    def _report(self, step: int, check: str, code: str, status: Status, summary: str, *, module: str | None = None,
                evidence: Sequence[str] = (), value: float | None = None) -> None:
        qualified = f"{check}.{code}"
        key = (qualified, module)
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] == 1:
            self._emit(WatchEvent(step, check, qualified, status, summary, tuple(evidence), module, value))

    def sightings(self) -> dict[tuple[str, str | None], int]:
        return dict(self._seen)

    @property
    def level(self) -> float | None:
        return _median(self._level) if self._level else None

    # -- loss ----------------------------------------------------------------------------------
    def loss(self, step: int, value: float, output_finite: bool | None = None) -> None:
        if not math.isfinite(value):
            where = ""
            if output_finite:
                where = "; the model's output is finite, so it arises in the loss itself (the log of a probability of 0?)"
            self._report(step, "numerics", "nonfinite_loss", Status.FAIL, f"the loss is {value}{where}", value=value)
            return
        t = self.settings.of("loss_progress")
        self.losses.append((step, value))
        if len(self.losses) > MAX_LOSSES:  # a very long job: keep every other old loss for the timeline
            self.losses[: MAX_LOSSES // 2] = self.losses[: MAX_LOSSES // 2 : 2]
        min_history = int(t["min_history"])
        starting = int(t["start_losses"])
        if self.start_level is None and len(self.losses) >= starting:
            # capped by the very first loss, the untrained model's: a run that blows up in its
            # first steps must not make its blown-up loss the starting level
            self.start_level = min(self.losses[0][1], _median(v for _, v in self.losses[:starting]))
        if len(self._recent) >= min_history and self.start_level is not None:
            recent = _median(self._recent)
            # ratios mean nothing for losses that can be negative (an ELBO, a log-likelihood)
            if recent > 0 and value > float(t["spike_ratio"]) * recent and value > float(t["spike_floor"]) * self.start_level:
                self._report(step, "loss_progress", "spike", Status.WARN,
                             f"the loss jumped to {value:.4g}, {value / max(recent, 1e-30):.0f}x its recent level {recent:.4g}",
                             value=value)
        self._recent.append(value)
        self._level.append(value)
        if self.start_level is None or len(self._level) < self._level.maxlen:
            return
        level = self.level
        self.best_level = level if self.best_level is None else min(self.best_level, level)
        reference = min(self.best_level, self.start_level)  # a run that never got better is judged against its start
        if reference > 0 and level > float(t["diverge_ratio"]) * reference and level > self.start_level:
            self._report(step, "loss_progress", "diverged", Status.FAIL,
                         f"the loss level rose to {level:.4g}, {level / max(reference, 1e-30):.1f}x its best "
                         f"{reference:.4g} and above its start {self.start_level:.4g}", value=level)
        self._judge_lr_rise(step, level)

    # -- learning rate -------------------------------------------------------------------------
    def lr(self, step: int, value: float) -> None:
        previous = self.lrs[-1][1] if self.lrs else None
        if previous is not None and value == previous:
            return
        self.lrs.append((step, value))
        if previous is None:
            return
        self.lr_changes.append(LrChange(step, previous, value))
        if value > previous:
            window = int(self.settings.of("lr_schedule")["window"])
            if step > self._rising_until:  # a new rise: judge the loss from its level now
                self._rising_min = self.level
                self._rise_from = previous
            self._rising_until = step + window

    def _judge_lr_rise(self, step: int, level: float) -> None:
        if step > self._rising_until or self._rising_min is None:
            self._rising_min = level if step <= self._rising_until else None
            return
        t = self.settings.of("lr_schedule")
        self._rising_min = min(self._rising_min, level)
        if self._rising_min > 0 and level > float(t["rise"]) * self._rising_min and level > float(t["floor"]) * (self.start_level or 0.0):
            lr_now = self.lrs[-1][1]
            self._report(step, "lr_schedule", "loss_rose", Status.WARN,
                         f"the loss level rose from {self._rising_min:.4g} to {level:.4g} while the learning rate went "
                         f"up from {self._rise_from:.3g} to {lr_now:.3g}", value=lr_now)

    # -- gradients (every step: the total; sampled steps: per layer) -----------------------------
    def gradients(self, step: int, names: Sequence[str], norms: Sequence[float] | None, total: float) -> None:
        t = self.settings.of("gradient_flow")
        if not math.isfinite(total):
            bad = [n for n, v in zip(names, norms or ()) if not math.isfinite(v)]
            module = bad[-1] if bad else None  # backward runs from the output: the last one in order saw it first
            evidence = [f"{len(bad)} of {len(names)} parameter tensors hold NaN/Inf gradients"] if bad else []
            self._report(step, "numerics", "nonfinite_gradient", Status.FAIL, f"the gradient norm is {total}",
                         module=module, evidence=evidence, value=total)
            return
        if norms is None:
            if len(self._total_base) >= int(t["baseline_samples"]):
                self._judge_explosion(step, total, t)
            return
        base_n = int(t["baseline_samples"])
        if len(self._total_base) < base_n:
            self._total_base.append(total)
        else:
            self._judge_explosion(step, total, t)
        for name, value in zip(names, norms):
            history = self._grad_base.setdefault(name, [])
            if len(history) < base_n and value > 0:
                history.append(value)
        self._judge_vanishing(step, names, norms, t)

    def _judge_explosion(self, step: int, total: float, t) -> None:
        usual = _median(self._total_base)
        if usual > 0 and total > float(t["explode_ratio"]) * usual:
            self._report(step, "gradient_flow", "exploding", Status.FAIL,
                         f"the gradient norm is {total:.3g}, {total / usual:.0f}x its usual {usual:.3g}", value=total)

    def _judge_vanishing(self, step: int, names: Sequence[str], norms: Sequence[float], t) -> None:
        base_n = int(t["baseline_samples"])
        level, start = self.level, self.start_level
        if level is None or start is None or level <= float(t["vanish_loss"]) * start:
            return  # a model that fits its data has small gradients by right
        judged = [(n, v, _median(self._grad_base[n])) for n, v in zip(names, norms) if len(self._grad_base.get(n, ())) >= base_n]
        if not judged:
            return
        vanished = 0
        for name, value, usual in reversed(judged):
            if value > float(t["vanish_ratio"]) * usual:
                break
            vanished += 1
        if vanished:
            last, value, usual = judged[-1]
            self._report(step, "gradient_flow", "vanishing", Status.FAIL,
                         f"gradients vanished in the last {vanished} of {len(judged)} parameter tensors, from the output back, "
                         f"while the loss level {level:.4g} is still {level / start:.0%} of its start",
                         module=last, value=value,
                         evidence=[f"{last}: gradient norm {value:.3g}, usually {usual:.3g}"])

    # -- updates and weights (sampled) ---------------------------------------------------------
    def updates(self, step: int, names: Sequence[str], weight_norms: Sequence[float], update_norms: Sequence[float] | None,
                matrices: Sequence[bool]) -> None:
        bad = [n for n, w in zip(names, weight_norms) if not math.isfinite(w)]
        if bad:
            self._report(step, "numerics", "nonfinite_weight", Status.FAIL,
                         f"{len(bad)} of {len(names)} parameter tensors hold NaN/Inf after the update", module=bad[0])
            return
        growth = self.settings.of("weight_growth")
        worst = None
        for name, norm, matrix in zip(names, weight_norms, matrices):
            if not matrix:
                continue
            start = self._weight_start.setdefault(name, norm)
            if start > 0 and norm > float(growth["ratio"]) * start and (worst is None or norm / start > worst[1]):
                worst = (name, norm / start)
        if worst:
            self._report(step, "weight_growth", "growing", Status.WARN,
                         f"the weight norm of {worst[0]} grew {worst[1]:.0f}x since watching began", module=worst[0], value=worst[1])
        if update_norms is None:
            return
        ratios = [u / w for u, w, m in zip(update_norms, weight_norms, matrices) if m and w > 0]
        if not ratios:
            return
        t = self.settings.of("update_ratio")
        ratio = _median(ratios)
        self._high_updates = self._high_updates + 1 if ratio > float(t["high"]) else 0
        if self._high_updates >= int(t["persist"]):
            self._report(step, "update_ratio", "too_large", Status.WARN,
                         f"updates change the weights by {ratio:.2g} of their size (median over weight matrices) "
                         f"for {self._high_updates} samples in a row; about 1e-3 is healthy", value=ratio)

    # -- outputs (sampled) ---------------------------------------------------------------------
    def outputs(self, step: int, stats: OutputStats) -> None:
        pinned_t = self.settings.of("pinned_probabilities")
        if stats.wrong_share is not None and stats.wrong_share > float(pinned_t["wrong_share"]):
            self._report(step, "pinned_probabilities", "wrong_class", Status.FAIL,
                         f"{stats.wrong_share:.0%} of the batch has probability exactly 1 on a wrong class "
                         f"(exactly 0 on the right one, whose log is -inf)", value=stats.wrong_share)
        elif stats.pinned_share is not None and stats.pinned_share >= float(pinned_t["pinned_share"]):
            self._report(step, "pinned_probabilities", "pinned", Status.WARN,
                         f"{stats.pinned_share:.0%} of the batch has a probability of exactly 1", value=stats.pinned_share)
        logit_t = self.settings.of("logit_scale")
        if stats.logit_mean_abs is not None and stats.logit_mean_abs > float(logit_t["large"]) \
                and stats.logit_spread < float(logit_t["equal_ratio"]) * stats.logit_mean_abs:
            self._report(step, "logit_scale", "large_equal", Status.FAIL,
                         f"the logits average |{stats.logit_mean_abs:.3g}| but differ across classes by only "
                         f"{stats.logit_spread:.3g} (std): every class gets the same probability", value=stats.logit_mean_abs)
        self._judge_collapse(step, stats)

    def _judge_collapse(self, step: int, stats: OutputStats) -> None:
        if stats.labelled is None:
            return
        t = self.settings.of("prediction_collapse")
        self._outputs.append(stats)
        window = int(t["window"])
        while sum(int(s.predicted.sum()) for s in self._outputs) - int(self._outputs[0].predicted.sum()) >= window:
            self._outputs.popleft()
        predicted = sum(s.predicted for s in self._outputs)
        total = int(predicted.sum())
        if total < window:
            return
        labelled = sum(s.labelled for s in self._outputs)
        probability = sum(s.probability_sum for s in self._outputs) / total
        top = int(predicted.argmax())
        share, label_share = float(predicted[top]) / total, float(labelled[top]) / total
        # An untrained network may put every input into one class with near-uniform probabilities;
        # a collapse is sure of that class: it gets far more probability than its label share.
        over = (float(probability[top]) - label_share) / max(1 - label_share, 1e-9)
        if share >= float(t["share"]) and label_share <= float(t["label_share"]) and int((labelled > 0).sum()) >= 2 and over >= 0.5:
            self._report(step, "prediction_collapse", "one_class", Status.FAIL,
                         f"class {top} takes {share:.0%} of the last {total} predictions but only {label_share:.0%} of their labels",
                         value=share, evidence=[f"mean probability of class {top}: {float(probability[top]):.3f}"])

    # -- activations (sampled) -----------------------------------------------------------------
    def activation(self, step: int, module: str, check: str, share: float) -> None:
        t = self.settings.of(check)
        start = self._activation_start.setdefault(module, share)
        if share >= float(t["share"]) and share - start >= float(t["rise"]):
            what = "dead units" if check == "dead_relu" else "saturated outputs"
            self._report(step, check, "growing", Status.WARN,
                         f"{share:.0%} {what} in {module}, up from {start:.0%} when watching began", module=module, value=share)
