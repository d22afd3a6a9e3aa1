"""output_head: what the model emits against what the loss expects (seeds 000/001/003/004).

The head is observed, not guessed from the module list: ``probes.head`` records the op that
produced the prediction (``nn.Softmax``, ``F.softmax``, ``torch.relu(x)``, ``x.sigmoid()``) and the
first thing the loss does with it (``cross_entropy``, ``nll_loss``, ``binary_cross_entropy``, or a
hand-written ``log``). The numbers confirm it: rows that sum to 1 are probabilities wherever they
came from. Each pairing is then judged by what it does to learning:

- logits losses (CrossEntropyLoss) fed probabilities or squashed logits cap the reachable
  confidence (softmax outputs over 10 classes leave the true class at most 23% likely);
- NLLLoss needs log-probabilities, anything else makes it unbounded or bounded in [-1, 0];
- a log taken of probabilities (BCELoss after a sigmoid, log of a softmax) underflows to log 0;
- a cross-entropy head must have one logit per class: fewer fails, and so do many more (at least
  ``width_ratio`` times) than a complete class list read from every label;
- a bounded regression output cannot reach targets outside its bound (seed 004).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from nndoctor.context import Context
from nndoctor.problems import Problem, codes_of
from nndoctor.problems import worst as most_severe
from nndoctor.probes.data import dataset_targets, ignore_index
from nndoctor.probes.head import ACTIVATION_RANGES, HeadTrace, LossUse, OpRecord, head_trace, producer_behind
from nndoctor.result import Finding, Status, Table

LOGITS = "logits"  # class scores, softmax applied by the loss
BINARY_LOGITS = "binary logits"  # one score per output, sigmoid applied by the loss
LOG_PROBS = "log-probabilities"
PROBABILITIES = "probabilities"  # the loss takes their log itself
VALUES = "values"  # regression

# The first op a loss applies to the prediction tells what it expects to receive.
LOSS_EXPECTS = {
    "cross_entropy": LOGITS, "log_softmax": LOGITS, "softmax": LOGITS, "logsumexp": LOGITS,
    "multi_margin_loss": LOGITS,
    "binary_cross_entropy_with_logits": BINARY_LOGITS, "log_sigmoid": BINARY_LOGITS, "sigmoid": BINARY_LOGITS,
    "multilabel_soft_margin_loss": BINARY_LOGITS, "soft_margin_loss": BINARY_LOGITS,
    "nll_loss": LOG_PROBS, "kl_div": LOG_PROBS, "ctc_loss": LOG_PROBS,
    "binary_cross_entropy": PROBABILITIES, "log": PROBABILITIES, "log2": PROBABILITIES, "log10": PROBABILITIES,
    "mse_loss": VALUES, "l1_loss": VALUES, "smooth_l1_loss": VALUES, "huber_loss": VALUES,
    "poisson_nll_loss": VALUES, "gaussian_nll_loss": VALUES,
}
PROBABILITY_HEADS = frozenset({"softmax", "softmin"})
SQUASHING_HEADS = PROBABILITY_HEADS | {"sigmoid", "hardsigmoid"}
LOG_OPS = frozenset({"log", "log2", "log10"})
LABEL_LOSSES = frozenset({"cross_entropy", "nll_loss"})  # losses indexing a logit per class label


@dataclass(frozen=True)
class OutputStats:
    low: float
    high: float
    row_sum_mean: float | None  # over the dimension that looks most like probabilities
    row_sum_std: float | None
    logsumexp_mean: float | None
    zero_share: float
    is_probabilities: bool  # values in [0, 1], rows summing to 1
    is_log_probabilities: bool  # values <= 0, rows whose exp sums to 1


def output_stats(output: torch.Tensor, tolerance: float) -> OutputStats:
    out = output.detach().float()
    low, high = float(out.min()), float(out.max())
    # dim 1 is the class dim of CrossEntropyLoss; (B, T, C) sequence outputs keep it last.
    dims = sorted({1, out.dim() - 1}) if out.dim() >= 2 else []
    sums = {d: out.sum(d) for d in dims if out.shape[d] >= 2}
    lses = {d: out.logsumexp(d) for d in sums}
    in_unit = low >= -tolerance and high <= 1 + tolerance
    prob_dims = [d for d, s in sums.items() if in_unit and float((s - 1).abs().max()) <= tolerance]
    log_prob_dims = [d for d, s in lses.items() if high <= tolerance and float(s.abs().max()) <= tolerance]
    shown = (prob_dims or list(sums) or [None])[0]
    return OutputStats(
        low=low,
        high=high,
        row_sum_mean=float(sums[shown].mean()) if shown is not None else None,
        row_sum_std=float(sums[shown].std()) if shown is not None and sums[shown].numel() > 1 else None,
        logsumexp_mean=float(lses[shown].mean()) if shown is not None else None,
        zero_share=float((out == 0).float().mean()),
        is_probabilities=bool(prob_dims),
        is_log_probabilities=bool(log_prob_dims),
    )


@dataclass(frozen=True)
class Seen:
    """What the judges look at."""

    trace: HeadTrace
    stats: OutputStats
    loss: str  # the loss as the user knows it: "CrossEntropyLoss", "my_loss()"
    use: LossUse | None  # the loss's first telling op on the output
    task: str
    targets: Any  # a scan of the dataset's targets (CPU)
    thresholds: Mapping[str, Any]

    @property
    def consumer(self) -> str | None:
        return self.use.op if self.use is not None else None

    @property
    def classes(self) -> int:
        """Width of the class dimension as the loss receives it (dim 1, as CrossEntropyLoss reads it)."""
        shape = self.use.shape if self.use is not None else tuple(self.trace.output.shape)
        return int(shape[1]) if len(shape) >= 2 else 1

    @property
    def head_name(self) -> str | None:
        return self.trace.head.name if self.trace.head is not None else None

    @property
    def source(self) -> str:
        """Where the prediction comes from, for messages."""
        head = self.trace.head
        return head.where if head is not None else "the model's output"

    @property
    def rows(self) -> str:
        if self.stats.row_sum_mean is None:
            return f"outputs in [{self.stats.low:.3g}, {self.stats.high:.3g}]"
        std = self.stats.row_sum_std or 0.0
        return f"rows sum to {self.stats.row_sum_mean:.3f} ± {std:.3f}"

    @property
    def gives_probabilities(self) -> bool:
        return self.head_name in PROBABILITY_HEADS or self.stats.is_probabilities

    @property
    def gives_log_probabilities(self) -> bool:
        return self.head_name == "log_softmax" or self.stats.is_log_probabilities

    @property
    def head_is_activation(self) -> bool:
        return self.head_name in ACTIVATION_RANGES

    @property
    def removal(self) -> str:
        """What the fix removes: the head activation, or the hand-made squashing that ends the model."""
        if self.trace.head is None or self.head_is_activation:
            return _what(self.trace.head)
        return f"the step that turns the output into probabilities (its last op: {self.source})"


def loss_label(loss_fn: Any) -> str:
    if isinstance(loss_fn, nn.Module):
        return type(loss_fn).__name__
    name = getattr(loss_fn, "__name__", "")
    return f"{name}()" if name and name != "<lambda>" else "the loss function"


def expectation(trace: HeadTrace, task: str) -> tuple[str | None, LossUse | None]:
    """(what the loss expects, the use that shows it). In regression a log of the prediction is a
    likelihood of positive values (Poisson), and a loss that only subtracts the targets expects values."""
    use = next((use for use in trace.loss_uses if use.op in LOSS_EXPECTS), None)
    if task == "regression" and (use is None or use.op in LOG_OPS):
        return VALUES, use
    return (LOSS_EXPECTS[use.op], use) if use is not None else (None, None)


def _confidence_cap(bounds: tuple[float, float], classes: int) -> float:
    """Highest probability softmax can give one class when every logit lies within ``bounds``."""
    gap = bounds[1] - bounds[0]
    if not math.isfinite(gap):
        return 1.0
    return 1.0 / (1.0 + (classes - 1) * math.exp(-gap))


def _range(bounds: tuple[float, float]) -> str:
    def show(v: float) -> str:
        return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:.3g}"

    return f"[{show(bounds[0])}, {show(bounds[1])}]"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


# ---------------------------------------------------------------------------- judges per expectation


def _judge_logits(seen: Seen) -> list[Problem]:
    classes = seen.classes
    if seen.gives_probabilities:
        cap = _confidence_cap((0.0, 1.0), classes)
        return [Problem(
            Status.FAIL,
            f"probabilities fed to {seen.loss} ({seen.source}; {seen.rows})",
            (f"{seen.source} → {seen.loss}; {seen.rows}",
             f"{seen.loss} applies log-softmax itself, so logits squeezed into [0, 1] leave the true class "
             f"at most {cap:.0%} likely over {classes} classes, and the gradients shrink as the softmax saturates"),
            fix=f"Remove {seen.removal} and return the logits; keep {seen.loss} (it applies log-softmax itself). "
                f"Apply softmax only where you need probabilities, after the loss.",
            metrics={"confidence_cap": cap}, code="probabilities_to_ce",
        )]
    if _log_of_probabilities(seen):
        return [_unstable_log(seen)]
    if seen.gives_log_probabilities:
        return [Problem(
            Status.PASS,
            f"log-probabilities from {seen.source} into {seen.loss}",
            (f"log_softmax before {seen.loss} is redundant but exact: log-softmax of log-probabilities "
             f"returns them unchanged",),
        )]
    return _squashed_logits(seen, classes) or [Problem(Status.PASS, f"raw logits from {seen.source} into {seen.loss}")]


def _squashed_logits(seen: Seen, classes: int) -> list[Problem]:
    if not seen.head_is_activation:
        return []
    cap = _confidence_cap(seen.trace.bounds, classes)
    what = f"logits squashed by {seen.source} into {_range(seen.trace.bounds)}"
    fix = f"Drop {seen.removal}: the last layer must emit raw logits (a Linear layer) for {seen.loss}."
    if cap < seen.thresholds["confidence_cap"]:
        return [Problem(
            Status.FAIL, f"{what}: the true class can reach at most {cap:.0%} probability over {classes} classes",
            (f"{seen.source} → {seen.loss}; outputs in [{seen.stats.low:.3g}, {seen.stats.high:.3g}]",),
            fix=fix, metrics={"confidence_cap": cap}, code="squashed_logits",
        )]
    if seen.head_name == "relu":
        return [Problem(
            Status.FAIL,
            f"logits clipped at 0 by {seen.source}: a class whose logit is negative gets no gradient "
            f"({seen.stats.zero_share:.0%} of logits are exactly 0 at init)",
            (f"{seen.source} → {seen.loss}; logits can rise but never fall below 0",),
            fix=fix, metrics={"zero_share": seen.stats.zero_share}, code="relu_on_logits",
        )]
    if seen.trace.scaled:  # tanh(x) * 30 and the like: a deliberate, wide enough range
        return []
    return [Problem(
        Status.WARN, f"the logits pass through an activation ({seen.source}) before {seen.loss}",
        (f"outputs in [{seen.stats.low:.3g}, {seen.stats.high:.3g}]; logits usually come straight from a Linear layer",),
        fix=fix, code="activation_on_logits",
    )]


def _judge_binary_logits(seen: Seen) -> list[Problem]:
    low, high = (_sigmoid(b) for b in seen.trace.bounds)
    cap = seen.thresholds["confidence_cap"]
    if seen.head_is_activation and (high < cap or low > 1 - cap):
        double = seen.head_name in SQUASHING_HEADS
        what = (f"{seen.source} already squashes the output, and {seen.loss} applies a sigmoid again" if double
                else f"logits squashed by {seen.source} into {_range(seen.trace.bounds)}")
        return [Problem(
            Status.FAIL, f"{what}: predicted probabilities stay within [{low:.2f}, {high:.2f}]",
            (f"{seen.source} → {seen.loss}; outputs in [{seen.stats.low:.3g}, {seen.stats.high:.3g}]",),
            fix=f"Drop {seen.removal} and return raw logits; keep {seen.loss} (it applies the sigmoid itself, stably).",
            metrics={"reachable_low": low, "reachable_high": high}, code="squashed_logits",
        )]
    if seen.head_is_activation and not seen.trace.scaled:
        return [Problem(
            Status.WARN, f"the logits pass through an activation ({seen.source}) before {seen.loss}",
            ("logits usually come straight from a Linear layer",),
            fix=f"Drop {seen.removal} and return raw logits.", code="activation_on_logits",
        )]
    return [Problem(Status.PASS, f"raw logits from {seen.source} into {seen.loss}")]


def _judge_log_probs(seen: Seen) -> list[Problem]:
    log_softmax = "log_softmax (nn.LogSoftmax(dim=1) or F.log_softmax(logits, dim=1))"
    better = "; or better, return the logits and use CrossEntropyLoss, which fuses both" if seen.consumer == "nll_loss" else ""
    if seen.gives_probabilities:
        return [Problem(
            Status.FAIL, f"probabilities fed to {seen.loss}, which expects log-probabilities ({seen.rows})",
            (f"{seen.source} → {seen.loss}; {seen.rows}",
             "the loss works on p instead of log p (NLLLoss becomes -p, bounded in [-1, 0]), so confident "
             "mistakes cost almost nothing"),
            fix=f"Replace {seen.removal} by {log_softmax}{better}.", code="probabilities_to_nll",
        )]
    if _log_of_probabilities(seen):
        return [_unstable_log(seen)]
    if seen.gives_log_probabilities:
        return [Problem(Status.PASS, f"log-probabilities from {seen.source} into {seen.loss}")]
    lse = seen.stats.logsumexp_mean
    lse_text = f"rows' logsumexp is {lse:.3g}, not 0" if lse is not None else f"outputs reach {seen.stats.high:.3g} > 0"
    return [Problem(
        Status.FAIL, f"{seen.loss} receives outputs that are not log-probabilities ({lse_text})",
        (f"{seen.source} → {seen.loss}; the loss reads its input as log-probabilities, so unnormalized scores "
         f"let it fall without bound by inflating the target's entries",),
        fix=f"End the model with {log_softmax}{better}.", code="not_log_probabilities",
    )]


def _judge_probabilities(seen: Seen) -> list[Problem]:
    fused = "BCEWithLogitsLoss" if seen.task in ("binary", "multilabel") else "CrossEntropyLoss"
    if seen.head_name in SQUASHING_HEADS or seen.gives_probabilities:
        evidence = [f"{seen.source} → {seen.loss}; {seen.rows}",
                    "the log of a probability that rounds to 0 is -inf: saturated outputs give inf loss and zero "
                    "or NaN gradients"]
        if seen.task == "classification" and seen.classes > 1 and not seen.gives_probabilities:
            evidence.append(f"{seen.head_name} outputs do not sum to 1 over {seen.classes} classes ({seen.rows}): "
                            f"a log-loss on them only pushes the true class up")
        return [Problem(
            Status.FAIL, f"{seen.loss} takes the log of probabilities computed by {seen.source}: numerically unstable",
            tuple(evidence),
            fix=f"Use {fused} and drop {seen.removal}: return raw logits and let the loss apply the "
                f"{'sigmoid' if fused == 'BCEWithLogitsLoss' else 'softmax'} and the log in one stable step.", code=_log_code(seen),
        )]
    if seen.stats.low < 0 or seen.stats.high > 1:
        why = ("the log of a negative value is NaN" if seen.stats.low < 0
               else "outputs above 1 let the log-loss fall without bound")
        return [Problem(
            Status.FAIL,
            f"{seen.loss} takes the log of outputs in [{seen.stats.low:.3g}, {seen.stats.high:.3g}], which are not "
            f"probabilities: {why}",
            (f"{seen.source} → {seen.loss} ({seen.consumer})",),
            fix=f"Return raw logits and use {fused}, which expects them.", code="log_of_non_probabilities",
        )]
    return [Problem(
        Status.WARN, f"{seen.loss} takes the log of probabilities computed in the model ({seen.source})",
        ("a log of probabilities underflows once they saturate; fused losses on logits do not",),
        fix=f"Return raw logits and use {fused}.", code=_log_code(seen),
    )]


def _judge_values(seen: Seen) -> list[Problem]:
    targets = seen.targets
    if not isinstance(targets, torch.Tensor):
        return [Problem(Status.PASS, f"output range {_range(seen.trace.bounds)} (targets are not a tensor)")]
    targets = targets.detach().float()
    t_low, t_high = float(targets.min()), float(targets.max())
    low, high = seen.trace.bounds
    if math.isinf(low) and math.isinf(high):
        output = f"unbounded output ({seen.source})" if seen.head_is_activation else "linear output"
        return [Problem(Status.PASS, f"{output}, targets in [{t_low:.3g}, {t_high:.3g}]")]
    slack = 1e-6 * max(1.0, abs(t_low), abs(t_high))
    outside = float(((targets < low - slack) | (targets > high + slack)).float().mean())
    metrics = {"targets_outside_share": outside, "targets_min": t_low, "targets_max": t_high}
    limiter = seen.trace.limiter
    bounded = f"{limiter.where if limiter else seen.source} bounds the output to {_range(seen.trace.bounds)}"
    if outside > seen.thresholds["bound_margin"]:
        return [Problem(
            Status.FAIL, f"{bounded}, but {outside:.0%} of targets lie outside it (targets in [{t_low:.3g}, {t_high:.3g}])",
            (f"the model cannot predict a value outside {_range(seen.trace.bounds)}",),
            fix=f"Use a linear output for regression: drop {_what(limiter)} (or rescale the targets into "
                f"{_range(seen.trace.bounds)} and back).",
            metrics=metrics, code="targets_outside_bounded_output",
        )]
    evidence = (f"{outside:.1%} of targets lie outside the bound",) if outside > 0 else ()
    return [Problem(Status.PASS, f"{bounded}; targets in [{t_low:.3g}, {t_high:.3g}] lie within it", evidence, metrics=metrics)]


JUDGES: dict[str, Callable[[Seen], list[Problem]]] = {
    LOGITS: _judge_logits,
    BINARY_LOGITS: _judge_binary_logits,
    LOG_PROBS: _judge_log_probs,
    PROBABILITIES: _judge_probabilities,
    VALUES: _judge_values,
}


def _what(op: OpRecord | None) -> str:
    """An op as the user wrote it, to name what to remove."""
    if op is None:
        return "the final activation"
    if op.in_leaf_module and op.module_path:
        return f"the final {op.module_type} layer ({op.module_path})"
    return f"{op.call}() at the end of {op.module_type}.forward"


def _log_code(seen: Seen) -> str:
    """BCELoss on probabilities is the classic sigmoid + BCELoss; any other log-loss on
    probabilities computed in the model is a softmax (or sigmoid) before a log."""
    return "bce_on_probabilities" if seen.loss.endswith("BCELoss") else "log_of_probabilities"


def _log_of_probabilities(seen: Seen) -> bool:
    """log(softmax(x)) computed in two steps inside the model."""
    behind = producer_behind(seen.trace.head)
    return seen.head_name in LOG_OPS and behind is not None and behind.name in PROBABILITY_HEADS


def _unstable_log(seen: Seen) -> Problem:
    behind = producer_behind(seen.trace.head)
    return Problem(
        Status.FAIL,
        f"log(softmax) taken in two steps ({behind.where}, then {seen.source}): probabilities that round to 0 "
        f"give log 0 = -inf",
        (f"{behind.where} → {seen.source} → {seen.loss}",),
        fix="Use F.log_softmax(logits, dim=1), one stable op, instead of log(softmax(...)); or return the logits "
            "and use CrossEntropyLoss.", code="log_softmax_in_two_steps",
    )


# ---------------------------------------------------------------------------------- output width


# How far wrappers (Subset, the dict-item adapter) are looked through for a dataset's class list.
WRAPPER_DEPTH = 4


@dataclass(frozen=True)
class Labels:
    """The integer class labels of the dataset, as read for the width judgement."""

    values: torch.Tensor  # 1-D, without the loss's ignore_index
    complete: bool  # every sample's label was read, not a scan
    coverage: str  # "all 512 samples", "a scan of 2048 of 60000 samples"
    declared: int | None  # how many classes the dataset names (torchvision's ``classes``), if it does

    @property
    def classes(self) -> int:
        """Classes 0..classes-1 as far as the labels reach."""
        return int(self.values.max()) + 1

    @property
    def is_class_list(self) -> bool:
        """Every label 0..max occurs, more than one of them: the labels are a complete class list.
        Labels with gaps are ids from a larger set (a vocabulary, global class ids) whose unused
        values may well have logits."""
        return self.classes > 1 and int(torch.unique(self.values).numel()) == self.classes


def _labels(ctx: Context) -> Labels | None:
    column = ctx.shared(dataset_targets)
    targets = column.values
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or targets.numel() == 0:
        return None
    values = targets.reshape(-1)
    values = values[values != ignore_index(ctx.subject.loss_fn)]
    if not values.numel():
        return None
    return Labels(values, column.complete, column.coverage, _declared_classes(ctx.subject.dataset))


def _declared_classes(dataset: Any) -> int | None:
    for _ in range(WRAPPER_DEPTH):
        classes = getattr(dataset, "classes", None)
        if isinstance(classes, (list, tuple, dict)):
            return len(classes)
        dataset = getattr(dataset, "dataset", None)
    return None


def _judge_width(seen: Seen, labels: Labels | None) -> list[Problem]:
    if seen.consumer not in LABEL_LOSSES:
        return []
    width = seen.classes
    classes = labels.classes if labels is not None else None
    metrics = {"labels_max": classes - 1 if classes else None}
    head_fix = _head_fix(classes)
    if width == 1:
        why = ("log-softmax over a single logit is 0, so the loss is always 0 and nothing is learned"
               if seen.consumer == "cross_entropy" else "the loss only negates that one column: unbounded below")
        return [Problem(
            Status.FAIL, f"1-wide output with {seen.loss}: {why}", (f"the loss receives shape {seen.use.shape}",),
            fix=f"{head_fix}; for a binary task you may instead keep one output and use BCEWithLogitsLoss with "
                f"float 0/1 targets.",
            metrics=metrics, code="single_logit",
        )]
    if classes is None:
        return []
    if width < classes:
        return [Problem(
            Status.FAIL, f"output width {width} but labels reach {classes - 1}: labels >= {width} have no logit",
            ("the loss raises on those labels (see data_integrity)",),
            fix=f"{head_fix} (labels 0..{classes - 1}), or map the labels into 0..{width - 1}.", metrics=metrics, code="too_narrow",
        )]
    # A single label value lists no classes (data_integrity and class_balance speak to it); a class
    # list the dataset declares (torchvision's ``classes``) accounts for the logits it covers.
    if width < seen.thresholds["width_ratio"] * classes or classes == 1 or (labels.declared or 0) >= width:
        declared = f" ({labels.declared} classes declared by the dataset)" if labels.declared else ""
        return [Problem(Status.PASS, f"{width} logits for labels 0..{classes - 1}{declared}", metrics=metrics)]
    return [_too_wide(labels, width, metrics)]


def _head_fix(classes: int | None) -> str:
    return f"Make the last layer Linear(…, {classes or 'C'}): one logit per class"


def _too_wide(labels: Labels, width: int, metrics: Mapping[str, Any]) -> Problem:
    """A head far wider than the labels is a mismatch (a head copied from another task, a default
    num_classes left in place) once the labels are known to be a complete class list: every label
    read and all of 0..C-1 present. Otherwise the other logits may be for classes rarer than a
    scan can see, or for ids of a larger set that the data does not use."""
    classes = labels.classes
    unused = f"{width - classes} logits belong to classes absent from {labels.coverage}"
    if labels.complete and labels.is_class_list:
        status, evidence = Status.FAIL, (
            f"labels 0..{classes - 1} all occur and none is higher: the model has {width} logits for {classes} classes",
            f"the extra logits start the loss at ln({width}) = {math.log(width):.2f} instead of ln({classes}) = "
            f"{math.log(classes):.2f} and are trained only to stay low",
        )
    else:
        reason = ("only a scan was read: rarer classes may exist" if not labels.complete
                  else "the labels skip some values below their maximum: they may be ids from a larger set")
        status, evidence = Status.WARN, (reason,)
    return Problem(
        status, f"output width {width} for labels 0..{classes - 1}: {unused}", evidence,
        fix=f"{_head_fix(classes)} (labels 0..{classes - 1}), unless those classes exist in data not shown here.",
        metrics=metrics, code="too_wide",
    )


# ------------------------------------------------------------------------------------- verdict


def _path_table(trace: HeadTrace) -> tuple[Table, ...]:
    if trace.head is None:
        return ()
    rows = tuple((op.call, op.where, _range(bounds)) for op, bounds in zip((trace.head, *trace.path), trace.ranges))
    return (Table("How the prediction is produced (head op first)", ("op", "where", "range"), rows),)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _metrics(seen: Seen, expects: str) -> dict[str, Any]:
    stats, trace = seen.stats, seen.trace
    return {
        "expects": expects,
        "loss_consumer": seen.consumer,
        "head_op": trace.head.name if trace.head is not None else None,
        "head_where": seen.source,
        "output_width": seen.classes,
        "output_min": _finite(stats.low),
        "output_max": _finite(stats.high),
        "row_sum_mean": _finite(stats.row_sum_mean),
        "row_sum_std": _finite(stats.row_sum_std),
        "bound_low": _finite(trace.bounds[0]),
        "bound_high": _finite(trace.bounds[1]),
    }


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    trace = ctx.shared(head_trace)
    _, scan_targets = ctx.scan()
    expects, use = expectation(trace, ctx.subject.task)
    seen = Seen(
        trace=trace, stats=output_stats(trace.output, thresholds["prob_sum_tolerance"]),
        loss=loss_label(ctx.subject.loss_fn), use=use, task=ctx.subject.task,
        targets=scan_targets, thresholds=thresholds,
    )
    if expects is None:
        applied = ", ".join(use.op for use in trace.loss_uses) or "no traceable torch op"
        return Finding.skip(
            f"cannot tell what {seen.loss} expects from the model ({applied} applied to the output); "
            f"the output comes from {seen.source}, in [{seen.stats.low:.3g}, {seen.stats.high:.3g}]",
            head_where=seen.source,
        )
    problems = JUDGES[expects](seen) + _judge_width(seen, _labels(ctx))
    worst = most_severe(problems)  # first of the worst: the head before the width
    metrics = _metrics(seen, expects)
    for problem in problems:
        metrics.update(problem.metrics)
    evidence = [line for p in problems for line in p.evidence]
    if trace.loss_error:
        evidence.append(f"the loss raised on this batch: {trace.loss_error}")
    return Finding(
        worst.status,
        "; ".join(p.summary for p in problems if p.status is worst.status),
        metrics,
        tuple(evidence),
        _path_table(trace),
        fix=worst.fix,
        codes=codes_of(problems),
    )
