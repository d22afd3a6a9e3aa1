"""class_balance: does one class dominate the labels? (seed 002 "Balanced dataset"; seed 000
oversampling; smdebug's ClassImbalance rule, whose default ratio is 10.)

The measure is majority/minority: the largest class count over the smallest, for the classes of
a classifier, and for each output of a binary or multilabel model, negatives against positives.
Counts come from every label where the dataset holds them in memory, else from the run's scan;
from a scan the ratio judged is a lower bound (counts moved two Poisson standard errors against
the imbalance), so a 1000-class dataset with two scanned samples per class is not called
imbalanced by chance.

A class-weighted loss (CrossEntropyLoss/NLLLoss(weight=...), BCEWithLogitsLoss(pos_weight=...))
changes what the loss sees: each class's count times its weight. When the weights lower the
ratio, the weighted ratio is judged instead and the verdict is at worst a warning, saying so.
A WeightedRandomSampler cannot be taken into account yet: the model-file contract has no sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from nndoctor import tokens
from nndoctor.context import Context
from nndoctor.probes.data import Column, dataset_targets, ignore_index
from nndoctor.result import Finding, PlotData, Status, Table
from nndoctor.tokens import TokenObjective

Z = 2.0  # standard errors a scanned count is moved by before judging
SHOWN = 3  # classes named in the evidence at each end
TABLE_ROWS = 20


@dataclass(frozen=True)
class Group:
    """The counts behind one decision: the classes of a classifier, or one binary output."""

    name: str  # "labels", "targets", "output 3"
    classes: tuple[str, ...]
    counts: torch.Tensor  # float64, one per class (soft labels give fractional counts)
    weights: torch.Tensor | None  # the loss's per-class weights, None when it has none

    @property
    def binary(self) -> bool:
        return self.classes == ("negative", "positive")


@dataclass(frozen=True)
class Balance:
    group: Group
    ratio: float  # observed majority/minority count over the classes that occur
    judged: float  # the ratio the verdict rests on (a lower bound for a scan, weighted if mitigated)
    mitigated: bool
    absent: tuple[str, ...]  # classes with no sample at all (every label read)
    status: Status


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    task = ctx.subject.task
    if task == "regression":
        return Finding.skip("regression: the targets are continuous, there are no classes to count")
    column = ctx.shared(dataset_targets)
    objective = ctx.subject.token_objective
    if objective is not None and isinstance(column.values, torch.Tensor) and column.values.dim() == 2:
        return _token_labels(ctx, objective, column)
    if not isinstance(column.values, torch.Tensor):
        return Finding.skip("the targets are not a single tensor: no class labels to count")
    groups = _groups(ctx, column.values)
    if not groups:
        return Finding.skip(f"{column.values.dtype} targets of shape {tuple(column.values.shape)} hold no class labels to count")
    balances = [_judge(g, column.complete, thresholds) for g in groups]
    return _finding(balances, column, thresholds)


def _token_labels(ctx: Context, objective: TokenObjective, column: Column) -> Finding:
    """Token labels are a language, not a classification prior: their frequencies follow Zipf's
    law by nature and a model predicting the commonest token is the unigram baseline it must beat,
    not a collapse to fear. Reported as a distribution (entropy, coverage, ignored positions);
    judged only on what stops a language model from learning: no label left to learn from, and
    the end-of-sequence token never a target (a pad token equal to EOS, masked with the padding)."""
    stats = tokens.distribution(objective, column.values)
    ignored = f"{stats['ignored_share']:.1%} of label positions ignored (label {objective.ignore_index})"
    if not stats["scored"]:
        return Finding(
            Status.FAIL,
            f"every label position is ignored (label {objective.ignore_index}) in {column.coverage}: the loss has nothing to learn from",
            stats, (ignored,), fix=ALL_IGNORED_FIX, codes=("all_labels_ignored",),
        )
    summary = (
        f"token labels ({objective.kind}): unigram entropy {stats['entropy']:.2f} nats (perplexity "
        f"{stats['perplexity']:.1f} of {objective.vocab} tokens), {stats['distinct']} distinct tokens "
        f"({stats['coverage']:.0%} of the vocabulary), {ignored}"
    )
    evidence = (f"labels read: {column.coverage}", "token frequencies are judged as a language (Zipf's law is normal), not as class imbalance")
    inputs, _ = ctx.scan()
    eos = _eos_never_a_target(ctx, objective, inputs, column.values)
    if eos is not None:
        return Finding(
            Status.WARN, f"{eos} ({summary})", stats, evidence, fix=EOS_FIX, codes=("eos_label_ignored",),
        )
    return Finding(Status.PASS, summary, stats, evidence)


ALL_IGNORED_FIX = (
    "Every label is ignore_index, so the loss is NaN or 0 and nothing is learned. Check how labels are built: "
    "a prompt mask that covers the whole sequence, truncation that cuts off every answer, or padding "
    "(pad_token_id) equal to every token."
)
EOS_FIX = (
    "Labels of the end-of-sequence token are masked as padding, so the model never learns to stop generating. "
    "This happens when tokenizer.pad_token = tokenizer.eos_token and the collator sets labels[input_ids == "
    "pad_token_id] = -100: mask padding with the attention mask instead (labels[attention_mask == 0] = -100), "
    "or add a distinct pad token."
)


def _eos_never_a_target(ctx: Context, objective: TokenObjective, inputs: Any, labels: torch.Tensor) -> str | None:
    """'the EOS token ... never a target' when the inputs hold the model's EOS token (config.eos_token_id)
    and every label at those positions is ignored, while other positions are scored."""
    config = getattr(ctx.subject.model, "config", None)
    eos = getattr(config, "eos_token_id", None)
    ids = tokens.input_ids(inputs)
    if not isinstance(eos, int) or not isinstance(ids, torch.Tensor) or ids.shape != labels.shape:
        return None
    at_eos = ids == eos
    if not bool(at_eos.any()) or objective.ignore_index is None:
        return None
    if bool((labels[at_eos] == objective.ignore_index).all()):
        pad = getattr(config, "pad_token_id", None)
        same = " (pad_token_id is eos_token_id)" if pad == eos else ""
        return f"the end-of-sequence token {eos} occurs {int(at_eos.sum())} times in the inputs but its label is always ignored{same}: the model never learns to end a sequence"
    return None


def _groups(ctx: Context, targets: torch.Tensor) -> list[Group]:
    loss_fn, task = ctx.subject.loss_fn, ctx.subject.task
    if task == "classification":
        counts = _class_counts(targets, ignore_index(loss_fn), ctx.subject.num_classes)
        if counts is None:
            return []
        weights = _as_weights(getattr(loss_fn, "weight", None), len(counts))
        return [Group("labels", tuple(str(i) for i in range(len(counts))), counts, weights)]
    if task == "binary" or targets.dim() < 2:
        columns, names = targets.reshape(-1, 1), ["targets"]
    else:  # multilabel: one binary decision per output along the last dim
        columns = targets.reshape(-1, targets.shape[-1])
        names = [f"output {k}" for k in range(columns.shape[1])]
    positives = (columns > 0.5).sum(dim=0).double()
    negatives = len(columns) - positives
    pos_weight = _as_weights(getattr(loss_fn, "pos_weight", None), len(names))
    one = torch.ones((), dtype=torch.float64)
    return [
        Group(name, ("negative", "positive"), torch.stack([negatives[k], positives[k]]),
              None if pos_weight is None else torch.stack([one, pos_weight[k]]))
        for k, name in enumerate(names)
    ]


def _class_counts(targets: torch.Tensor, ignored_label: int, num_classes: int) -> torch.Tensor | None:
    """Count per class index: integer labels are counted, soft (probability) targets summed along
    the class dim. With one label per sample the model's output width says how many classes there
    are, so a class without samples shows up as a count of 0."""
    if targets.is_floating_point():
        if targets.dim() < 2:
            return None
        return targets.double().transpose(0, 1).reshape(targets.shape[1], -1).sum(dim=1)
    if targets.dtype == torch.bool:
        return None
    labels = targets[(targets >= 0) & (targets != ignored_label)]
    if not labels.numel():
        return None
    return torch.bincount(labels, minlength=num_classes if targets.dim() == 1 else 0).double()


def _as_weights(weight: Any, size: int) -> torch.Tensor | None:
    """The loss's class weights as float64 of ``size`` (a single pos_weight is broadcast), or None."""
    if not isinstance(weight, torch.Tensor):
        return None
    weight = weight.detach().double().cpu().flatten()
    if weight.numel() == 1:
        weight = weight.expand(size)
    return weight if weight.numel() == size else None


def _at_least(counts: torch.Tensor) -> torch.Tensor:
    return (counts + Z * Z / 2 - Z * torch.sqrt(counts + Z * Z / 4)).clamp(min=0)


def _at_most(counts: torch.Tensor) -> torch.Tensor:
    return counts + Z * Z / 2 + Z * torch.sqrt(counts + Z * Z / 4)


def _ratio(majority: torch.Tensor, minority: torch.Tensor) -> float:
    least = float(minority.min())
    return math.inf if least == 0 else float(majority.max()) / least


def _judge(group: Group, complete: bool, t: Mapping[str, Any]) -> Balance:
    counts = group.counts
    occurring = counts > 0
    # Every label read: a class with none is certain, and stated apart from the ratio. From a scan a
    # missing class may just be rare, so it stays in, bounded by what the scan could have missed.
    absent = tuple(c for c, n in zip(group.classes, counts.tolist()) if complete and n == 0)
    if int(occurring.sum()) < 2:  # a single class: predicting it always is optimal
        return Balance(group, math.inf, math.inf, False, absent, Status.FAIL)
    observed = _ratio(counts[occurring], counts[occurring])
    present = occurring if complete else torch.ones_like(occurring)
    kept = counts[present]
    low, high = (kept, kept) if complete else (_at_least(kept), _at_most(kept))
    judged = _ratio(low, high)
    mitigated = False
    if group.weights is not None:
        weights = group.weights[present]
        weighted = _ratio(low * weights, high * weights)
        mitigated = weighted < judged
        judged = weighted if mitigated else judged
    status = _status(judged, mitigated, t)
    if absent and status is Status.PASS:
        status = Status.WARN
    return Balance(group, observed, judged, mitigated, absent, status)


def _status(ratio: float, mitigated: bool, t: Mapping[str, Any]) -> Status:
    if ratio >= t["ratio_fail"] and not mitigated:
        return Status.FAIL
    if ratio >= t["ratio_warn"]:
        return Status.WARN
    return Status.PASS


def _severity(b: Balance) -> tuple[int, float]:
    return {Status.FAIL: 2, Status.WARN: 1}.get(b.status, 0), b.judged


def _finding(balances: list[Balance], column: Column, t: Mapping[str, Any]) -> Finding:
    worst = max(balances, key=_severity)
    metrics = {
        "ratio": worst.ratio,
        "judged_ratio": worst.judged,
        "mitigated_by_loss_weights": worst.mitigated,
        "labels_read": len(column.indices),
        "complete": column.complete,
        "groups": len(balances),
        "absent_classes": len(worst.absent),
    }
    summary = _summary(worst, balances, column, t)
    evidence = _evidence(worst, balances, column)
    fix = _fix(worst, t) if worst.status is not Status.PASS else None
    return Finding(
        worst.status, summary, metrics, evidence, (_table(balances),), fix=fix, plots=(_plot(balances),),
        codes=_codes(worst, t),
    )


def _codes(worst: Balance, t: Mapping[str, Any]) -> tuple[str, ...]:
    if not worst.status.is_problem:
        return ()
    if worst.ratio == math.inf and not worst.absent:
        return ("single_class",)
    codes = []
    if worst.judged >= t["ratio_warn"]:
        codes.append("imbalanced_despite_weights" if worst.mitigated else "imbalanced")
    if worst.absent:
        codes.append("absent_classes")
    return tuple(codes)


def _shares(group: Group) -> list[tuple[str, float, float]]:
    """(class, count, share) from the largest class to the smallest."""
    total = float(group.counts.sum()) or 1.0
    rows = [(c, float(n), float(n) / total) for c, n in zip(group.classes, group.counts.tolist())]
    return sorted(rows, key=lambda r: -r[1])


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def _positive_rate(group: Group) -> float:
    return float(group.counts[1]) / max(float(group.counts.sum()), 1.0)


def _headline(b: Balance) -> str:
    g = b.group
    total = int(round(float(g.counts.sum())))
    if g.binary:
        where = f"{g.name}: " if g.name != "targets" else ""
        return f"{where}positives are {_percent(_positive_rate(g))} of {total} targets"
    rows = [r for r in _shares(g) if r[1] > 0]
    (top, _, top_share), (bottom, _, bottom_share) = rows[0], rows[-1]
    if len(rows) == 1:
        return f"all {total} labels are class {top}"
    return f"class {top} holds {_percent(top_share)} of {total} labels, class {bottom} {_percent(bottom_share)}"


def _summary(b: Balance, balances: list[Balance], column: Column, t: Mapping[str, Any]) -> str:
    finite = math.isfinite(b.judged)
    text = f"{_headline(b)}: " + (f"ratio {b.ratio:.1f}" if math.isfinite(b.ratio) else "no other class occurs")
    if b.mitigated:
        text += f", mitigated by the loss's class weights: weighted ratio {b.judged:.1f}"
    if finite and b.judged >= t["ratio_fail"] and not b.mitigated:
        text += f" >= {t['ratio_fail']}"
    elif finite and b.judged >= t["ratio_warn"]:
        text += f" >= {t['ratio_warn']}"
    if b.group.weights is not None and not b.mitigated:
        text += " (the loss's class weights do not lower it)"
    if b.absent and math.isfinite(b.ratio):
        text += f"; {len(b.absent)} class(es) never occur: {', '.join(b.absent[:SHOWN * 2])}"
    if len(balances) > 1:
        text += f" (worst of {len(balances)} outputs)"
    if not column.complete:
        text += f", in {column.coverage}"
        if b.ratio >= t["ratio_warn"] and b.judged < t["ratio_warn"]:
            text += " (within sampling noise)"
    return text


def _evidence(worst: Balance, balances: list[Balance], column: Column) -> tuple[str, ...]:
    if len(balances) > 1:
        ranked = sorted(balances, key=_severity, reverse=True)[:SHOWN * 2]
        return tuple(f"{_headline(b)}: ratio {b.ratio:.1f}" for b in ranked)
    rows = _shares(worst.group)
    shown = rows if len(rows) <= SHOWN * 2 else rows[:SHOWN] + rows[-SHOWN:]
    lines = tuple(f"{'class ' if not worst.group.binary else ''}{c}: {n:.0f} ({_percent(s)})" for c, n, s in shown)
    if worst.group.weights is not None:
        weights = ", ".join(f"{w:.3g}" for w in worst.group.weights.tolist()[:SHOWN * 4])
        lines += (f"loss class weights: {weights}",)
    return lines + (f"labels read: {column.coverage}",)


def _fix(b: Balance, t: Mapping[str, Any]) -> str | None:
    if not math.isfinite(b.ratio):
        return (
            "Only one class occurs: check how the labels are built (a constant target, a filter or a split "
            "that dropped the other classes)."
        )
    if b.absent and b.judged < t["ratio_warn"]:  # the warning is about the missing classes alone
        return (
            f"Class(es) {', '.join(b.absent[:SHOWN * 2])} never occur: check that every class made it into the "
            f"data (label mapping, a filtered split), or give the model only as many outputs as classes."
        )
    if b.mitigated:
        return "The loss's class weights help but leave a sizeable imbalance: weight the loss by inverse class frequency, or resample."
    if b.group.binary:
        return (
            "Set BCEWithLogitsLoss(pos_weight=negatives/positives) per output, or oversample the positives "
            "(WeightedRandomSampler), and set the final bias to log(p / (1 - p))."
        )
    return None  # the catalog's advice (undersample, weight the loss, sampler, bias to the log prior)


def _table(balances: list[Balance]) -> Table:
    """Counts per class, or positives per output; the loss's weights as a column when it has them."""
    weighted = balances[0].group.weights is not None
    if balances[0].group.binary:
        rows = tuple(
            (b.group.name, int(b.group.counts[1]), int(b.group.counts[0]), round(_positive_rate(b.group), 4),
             round(b.ratio, 2) if math.isfinite(b.ratio) else "inf")
            + ((round(float(b.group.weights[1]), 4),) if weighted else ())
            for b in sorted(balances, key=_severity, reverse=True)[:TABLE_ROWS]
        )
        columns = ("output", "positives", "negatives", "positive rate", "ratio") + (("pos_weight",) if weighted else ())
        return Table("Positives per output (worst first)", columns, rows)
    group = balances[0].group
    rows = _shares(group)
    rows = rows if len(rows) <= TABLE_ROWS else rows[:TABLE_ROWS // 2] + rows[-TABLE_ROWS // 2:]
    weights = dict(zip(group.classes, group.weights.tolist())) if weighted else {}
    return Table(
        "Class frequencies (largest first)",
        ("class", "count", "share") + (("loss weight",) if weighted else ()),
        tuple(
            (c, int(n) if n.is_integer() else round(n, 2), round(share, 4)) + ((round(weights[c], 4),) if weighted else ())
            for c, n, share in rows
        ),
    )


def _plot(balances: list[Balance]) -> PlotData:
    if balances[0].group.binary:
        names = tuple(b.group.name for b in balances)
        rates = tuple(_positive_rate(b.group) for b in balances)
        return PlotData(
            "class_balance", "Positive rate per output", "output", "share of positives", (("positives", names, rates),), kind="bar",
        )
    rows = _shares(balances[0].group)
    return PlotData(
        "class_balance", "Class frequencies", "class", "share of labels",
        (("labels", tuple(r[0] for r in rows), tuple(r[2] for r in rows)),), kind="bar",
    )
