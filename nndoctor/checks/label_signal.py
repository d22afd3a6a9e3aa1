"""label_signal: are the labels predictable from the inputs beyond memorization? (issue 12; the
permutation test of Ojala & Garriga, "Permutation Tests for Studying Classifier Performance",
JMLR 2010; Zhang et al., "Understanding deep learning requires rethinking generalization", 2017:
a network memorizes random labels as readily as real ones, so only held-out loss tells them apart).

Two measurements:

* *signal*: copies of the model are trained briefly with the user's loss and optimizer on two
  thirds of a sample of the data, once on the real labels and ``permutations`` times on the same
  labels shuffled among the training samples; the same initial weights, mini-batch order and
  dropout draws in every run, so the labels are all that differs. Each is scored per sample on the
  held-out third. Labels that belong to their inputs make the real run generalize and beat the
  permuted runs; labels that do not (features shuffled without their labels, a broken join) make
  the real labels one more permutation, and the gain is noise. The noise is measured: the spread
  of the permuted runs' held-out losses (run to run) and the paired standard error over held-out
  samples, whichever is larger.
* *leak*: a single float input feature that alone orders the samples so that every class fills
  one contiguous block (classification, each label of binary/multilabel tasks), or that the
  target is a monotone function of (regression), with the chance of that happening for a feature
  unrelated to the label, summed over every feature tested, below ``max_leak_chance``. Token ids
  and other integer inputs are not tested: a word or a category legitimately carries the label
  (a sentiment word), and a position that holds one is no leak. Neither is an input of a single
  feature: it is all the model has.

Fail: the real labels do no better on held-out samples than permuted ones (gain under
``fail_sigmas`` noise levels and under ``max_fail_gain`` of their loss) after a run that fitted its training part, and are not fitted
faster than permuted ones either (real labels are: Zhang et al.); a feature equal to the label. Warn: a feature that predicts the label perfectly; a gain within the noise band; a run
that did not fit its training part (nothing to judge: the permuted runs are then not made, which
on a model too slow to fit in the run's steps saves three quarters of the check's time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from nndoctor import batching
from nndoctor.context import Context
from nndoctor.probes import cost
from nndoctor.probes.data import ignore_index, named_tensors
from nndoctor.result import Finding, Status
from nndoctor.training import dropout_off, fit, make_optimizer

PHASE = "label_signal training"
SCAN_ELEMENTS = 4_000_000  # feature values sorted at a time by the leak scan
SIGNAL_FIX = (
    "The labels do not belong to their inputs: look for features and labels shuffled or sorted "
    "separately (x = x[perm] without y = y[perm]), a join or merge on the wrong key, labels read "
    "from a different file or split than the inputs, or a dataset whose __getitem__ indexes inputs "
    "and labels differently."
)
LEAK_FIX = (
    "Remove the feature that gives the label away (the target column left among the inputs, an ID "
    "or timestamp sorted by label, a value computed from the label) and re-run."
)


@dataclass(frozen=True)
class Leak:
    feature: str  # e.g. "[:, 7]" of input "" (the first tensor)
    label: str  # "the label" or "label column 2"
    identical: bool  # the feature's values are the label's values
    log10_chance: float  # log10 of the chance of a feature as good by accident, all features counted


@dataclass(frozen=True)
class Signal:
    steps: int
    train: int
    held_out: int
    real: float  # mean held-out loss of the run on real labels
    permuted: tuple[float, ...]  # ... of each run on permuted labels
    noise: float  # standard deviation of (mean permuted - real) under no signal
    fit_ratio: float  # training-part loss after the real run / before it
    # Real labels are fitted faster than random ones (Zhang et al.): the permuted runs' loss on
    # their own training labels minus the real run's, in noise levels of the permuted runs.
    fit_sigmas: float

    @property
    def gain(self) -> float:
        return sum(self.permuted) / len(self.permuted) - self.real

    @property
    def sigmas(self) -> float:
        return self.gain / self.noise if self.noise > 0 else (math.inf if self.gain > 0 else 0.0)


@dataclass(frozen=True)
class Unfitted:
    """The real-label run did not fit its training part: nothing to judge, so the permuted-label
    runs (three more runs of the same cost) are not made."""

    steps: int
    train: int
    fit_ratio: float  # training-part loss after the run / before it


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    inputs, targets = ctx.batch(2)
    if not isinstance(targets, torch.Tensor):
        return Finding.skip(f"targets are {batching.describe(targets)}, not a tensor: nothing to permute")
    main = batching.main_tensor(inputs)
    if main.shape == targets.shape and torch.equal(main, targets):
        return Finding.skip("the target is the input itself (a reconstruction objective): there are no labels to tie to the inputs")
    leaks = find_leaks(ctx, float(thresholds["max_leak_chance"]))
    with torch.random.fork_rng():  # the runs reseed torch's RNG; the user's RNG state is restored after
        signal = measure_signal(ctx, thresholds)
    return judge(signal, leaks, thresholds)


def judge(signal: Signal | Unfitted | str, leaks: list[Leak], thresholds: Mapping[str, Any]) -> Finding:
    metrics: dict[str, Any] = {"leaks": len(leaks)}
    evidence = [_leak_line(leak) for leak in leaks[:5]]
    if isinstance(signal, Unfitted):
        metrics.update(steps=signal.steps, fit_ratio=signal.fit_ratio)
        evidence.insert(0, f"{signal.steps} steps on {signal.train} samples with the real labels left their loss "
                           f"x{signal.fit_ratio:.2f}: the runs on permuted labels were not made")
        verdict, codes = Status.WARN, ("inconclusive",)
        summary = f"inconclusive: the run did not fit its training samples (loss x{signal.fit_ratio:.2f})"
    elif isinstance(signal, str):
        if not leaks:  # nothing was judged: not a pass
            return Finding.skip(f"held-out comparison not run: {signal}", **metrics)
        verdict, summary, codes = Status.PASS, f"held-out comparison not run: {signal}", ()
    else:
        metrics.update(_signal_metrics(signal))
        evidence.insert(0, _signal_line(signal))
        verdict, summary, codes = _judge_signal(signal, thresholds)
    identical = [leak for leak in leaks if leak.identical]
    if identical:
        summary = f"an input feature is the label itself ({_leak_line(identical[0])})"
        return Finding(Status.FAIL, summary, metrics, tuple(evidence), fix=LEAK_FIX, codes=("label_in_input", *codes))
    if leaks:
        summary = f"a single input feature predicts the label perfectly ({_leak_line(leaks[0])}): a leak?"
        status = Status.FAIL if verdict is Status.FAIL else Status.WARN
        return Finding(status, summary, metrics, tuple(evidence), fix=LEAK_FIX, codes=("leak", *codes))
    fix = SIGNAL_FIX if "no_gain" in codes else None
    return Finding(verdict, summary, metrics, tuple(evidence), fix=fix, codes=codes)


def _judge_signal(s: Signal, thresholds: Mapping[str, Any]) -> tuple[Status, str, tuple[str, ...]]:
    headline = (
        f"held-out loss {s.real:.3g} with the real labels vs {_mean(s.permuted):.3g} with permuted ones "
        f"(gain {s.gain:.3g} = {s.sigmas:.1f} noise levels)"
    )
    negligible = s.gain < thresholds["max_fail_gain"] * abs(_mean(s.permuted))  # no gain worth the name, whatever the noise
    fitted_faster = s.fit_sigmas >= thresholds["pass_sigmas"]
    significant = s.sigmas >= thresholds["pass_sigmas"] or (fitted_faster and s.sigmas >= thresholds["fail_sigmas"])
    if significant and not negligible:
        return Status.PASS, f"labels are predictable from the inputs: {headline}", ()
    if negligible and s.sigmas < thresholds["fail_sigmas"] and not fitted_faster:
        return (Status.FAIL, f"labels are no more predictable from their inputs than shuffled labels: {headline}",
                ("no_gain",))
    return Status.WARN, f"labels are only weakly predictable from the inputs: {headline}", ("weak_signal",)


# --- the signal: real labels against permuted ones, on held-out samples ----------------------


def measure_signal(ctx: Context, thresholds: Mapping[str, Any]) -> Signal | Unfitted | str:
    most = int(thresholds["samples"])
    n = min(ctx.dataset_size, ctx.samples_within(int(thresholds["input_elements"]), most=most, least=48))
    if n < 24:
        return f"only {n} samples: too few to hold some out"
    inputs, targets = ctx.batch(n)
    if batching.batch_size_of(targets) != n:
        return f"targets {batching.describe(targets)} do not hold one row per sample"
    generator = torch.Generator().manual_seed(ctx.subject.seed)
    order = torch.randperm(n, generator=generator)
    held = order[: n // 3]
    train = order[n // 3:]
    train_x, train_y = batching.take(inputs, train), batching.take(targets, train)
    held_x, held_y = batching.take(inputs, held), batching.take(targets, held)
    batch_size = min(int(thresholds["batch_size"]), len(train))
    steps = cost.steps_within_flops(
        ctx, float(thresholds["flop_budget"]), batch_size, most=int(thresholds["steps"]), least=int(thresholds["min_steps"]),
    )

    def trained(labels: torch.Tensor) -> torch.nn.Module:
        ctx.seed_everything()  # same initial weights, mini-batches and dropout masks in every run
        model = ctx.subject.fresh_model()
        fit(ctx, model, train_x, labels, steps, make_optimizer(ctx, model), PHASE, batch_size=batch_size)
        return model

    initial = ctx.subject.fresh_model().train()
    before = _per_sample_losses(ctx, initial, train_x, train_y).mean()
    real_model = trained(train_y)
    after = _per_sample_losses(ctx, real_model, train_x, train_y).mean()
    fit_ratio = float(after / before) if float(before) > 0 else 1.0
    if fit_ratio > 1 - thresholds["min_fit"]:  # (a NaN ratio goes on: the non-finite reason below)
        return Unfitted(steps, len(train), fit_ratio)
    real = _per_sample_losses(ctx, real_model, held_x, held_y)
    permuted, fitted = [], []
    for _ in range(int(thresholds["permutations"])):
        labels = batching.take(train_y, torch.randperm(len(train), generator=generator))
        model = trained(labels)
        permuted.append(_per_sample_losses(ctx, model, held_x, held_y))
        fitted.append(float(_per_sample_losses(ctx, model, train_x, labels).mean()))
    losses = torch.stack([real, *permuted])
    finite = torch.isfinite(losses).all(dim=0)
    if int(finite.sum()) < 8 or not math.isfinite(float(before)) or not math.isfinite(float(after)):
        return "the loss turned non-finite (see numerics)"
    losses = losses[:, finite]
    means = losses.mean(dim=1)
    runs = len(permuted)
    paired = losses[1:].mean(dim=0) - losses[0]
    paired_se = float(paired.std() / math.sqrt(paired.numel()))
    run_spread = float(means[1:].std()) * math.sqrt(1 + 1 / runs) if runs > 1 else 0.0
    fit_gain = sum(fitted) / runs - float(after)
    fit_noise = float(torch.tensor(fitted).std()) * math.sqrt(1 + 1 / runs) if runs > 1 else 0.0
    return Signal(
        steps=steps, train=len(train), held_out=int(finite.sum()), real=float(means[0]),
        permuted=tuple(float(m) for m in means[1:]), noise=max(paired_se, run_spread),
        fit_ratio=fit_ratio,
        fit_sigmas=fit_gain / fit_noise if fit_noise > 0 else (math.inf if fit_gain > 0 else 0.0),
    )


def _per_sample_losses(ctx: Context, model: torch.nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
    """The user's loss on each sample alone (its reduction over one sample), measured as the runs
    train: in train mode with dropout off. Normalization layers use the statistics of the samples
    measured, not running averages that lag a short run (torchvision's BatchNorm momentum of 0.01
    leaves them a quarter of the way after 30 steps, and an eval-mode loss that has barely moved)."""
    model.train()
    with torch.no_grad(), dropout_off(model):
        output = ctx.subject.predict(model, inputs)
        rows = range(batching.batch_size_of(targets))
        return torch.tensor([
            float(ctx.subject.compute_loss(output[i:i + 1], batching.take(targets, torch.tensor([i])))) for i in rows
        ])


# --- the leak scan: one feature that alone gives the label away ------------------------------


def find_leaks(ctx: Context, max_chance: float) -> list[Leak]:
    inputs, targets = ctx.scan()
    columns = _label_columns(ctx, targets)
    features = [(name, t.reshape(len(t), -1)) for name, t in named_tensors(inputs) if t.is_floating_point() and t.dim() > 0]
    tested = sum(f.shape[1] for _, f in features)
    if not columns or tested < 2:
        return []
    leaks = []
    for label_name, labels, kind in columns:
        keep = torch.isfinite(labels) if labels.is_floating_point() else labels >= 0
        log_chance = _log_chance(labels[keep], kind) + math.log(tested * len(columns))
        if log_chance > math.log(max_chance):
            continue
        for name, values in features:
            for column in _perfect_columns(values[keep].float(), labels[keep], kind):
                identical = bool((values[keep][:, column].double() == labels[keep].double()).all())
                leaks.append(Leak(f"input{name}[:, {column}]", label_name, identical, log_chance / math.log(10)))
    return leaks


def _label_columns(ctx: Context, targets: torch.Tensor) -> list[tuple[str, torch.Tensor, str]]:
    """(name, one label per sample, "class" or "value") for each label the leak scan tests."""
    n = len(targets)
    task = ctx.subject.task
    if task == "classification":
        if targets.is_floating_point() and targets.dim() == 2:
            return [("the label", targets.argmax(dim=1), "class")]
        if not targets.is_floating_point() and targets.dim() == 1:
            labels = targets.clone()
            labels[labels == ignore_index(ctx.subject.loss_fn)] = -1
            return [("the label", labels, "class")]
        return []  # a label per position (tagging, language modelling): no per-sample label
    flat = targets.reshape(n, -1)
    kind = "class" if task in ("binary", "multilabel") else "value"
    if flat.shape[1] == 1:
        return [("the label", flat[:, 0], kind)]
    return [(f"label column {j}", flat[:, j], kind) for j in range(flat.shape[1])]


def _log_chance(labels: torch.Tensor, kind: str) -> float:
    """Natural log of the chance that a feature unrelated to the labels orders them perfectly: of
    the n!/prod(m!) equally likely label sequences along the feature's order, at most K! (the
    order of K class blocks) are perfect; for values, 2 (rising or falling)."""
    n = len(labels)
    _, counts = labels.unique(return_counts=True)
    if len(counts) < 2:
        return 0.0
    orders = math.lgamma(len(counts) + 1) if kind == "class" else math.log(2)
    return orders + sum(math.lgamma(int(c) + 1) for c in counts) - math.lgamma(n + 1)


def _perfect_columns(values: torch.Tensor, labels: torch.Tensor, kind: str) -> list[int]:
    """Columns of ``values`` (n, F) along whose order the labels are perfectly arranged: in one
    contiguous block per class, or monotone; samples with the same feature value share a label."""
    found = []
    per_chunk = max(1, SCAN_ELEMENTS // max(1, len(values)))
    classes = int(labels.unique().numel())
    for start in range(0, values.shape[1], per_chunk):
        chunk = values[:, start:start + per_chunk]
        ordered, order = chunk.sort(dim=0)
        arranged = labels.double()[order]
        tie = ordered[1:] == ordered[:-1]
        step = arranged[1:] - arranged[:-1]
        pure = ~((step != 0) & tie).any(dim=0) & torch.isfinite(chunk).all(dim=0)
        if kind == "class":
            perfect = pure & ((step != 0).sum(dim=0) == classes - 1)
        else:
            perfect = pure & ((step >= 0).all(dim=0) | (step <= 0).all(dim=0))
        found.extend(start + int(j) for j in perfect.nonzero().flatten())
    return found


# --- reporting -------------------------------------------------------------------------------


def _mean(values: tuple[float, ...]) -> float:
    return sum(values) / len(values)


def _signal_line(s: Signal) -> str:
    permuted = ", ".join(f"{v:.4g}" for v in s.permuted)
    return (
        f"{s.steps} steps on {s.train} samples, scored on {s.held_out} held out: real labels {s.real:.4g}, "
        f"permuted labels {permuted}; noise level {s.noise:.3g}; training-part loss x{s.fit_ratio:.2f}, "
        f"fitted faster than permuted labels by {s.fit_sigmas:.1f} noise levels"
    )


def _leak_line(leak: Leak) -> str:
    what = "equals" if leak.identical else "alone predicts"
    return f"{leak.feature} {what} {leak.label} (chance of this by accident: 10^{leak.log10_chance:.0f})"


def _signal_metrics(s: Signal) -> dict[str, Any]:
    return {
        "steps": s.steps, "held_out": s.held_out, "real_loss": s.real, "permuted_loss": _mean(s.permuted),
        "gain": s.gain, "noise": s.noise, "gain_sigmas": s.sigmas, "fit_ratio": s.fit_ratio,
        "fit_sigmas": s.fit_sigmas,
    }
