"""prediction_collapse: after a short run of the user's training setup, do the predictions still
spread over the classes, or has the network collapsed onto one of them? (seed 002: "has curiously
learned to classify all entries to a single dominant category"; seed 000: "the network classifies
every input with probability 1 to be in that particular class"; seeds 001/003: accuracy stuck at
1/N with "the signals for all classes ... largely equal, and quite large").

Three signatures, each judged on the samples the run trained on:

* *collapse onto one class*: one class takes nearly every prediction, and the model gives it far
  more probability than its share of the labels. Counting argmax predictions alone cannot tell a
  collapse from an untrained network, which often puts every input into one class by chance with
  near-uniform probabilities; and predicting the majority class more often is expected on
  imbalanced data. Cross-entropy training with a bias keeps the mean predicted probability of each
  class near its label share, so a model that is sure of one class for every input has collapsed.
  The over-assignment ``(mean probability - label share) / (1 - label share)`` is 0 for such a
  calibrated model and 1 when every input gets that class with certainty.
* *softmax pinned at 1 on a wrong class*: the top probability is exactly 1.0 in float32 (logit gap
  above ~17) for a wrong class. When the model emits probabilities, the log the loss takes of the
  right class's is -inf (or the clip value) and no gradient passes the saturated softmax (seed
  000); with logits into a fused loss it shows logits driven far apart, by a learning rate far too
  high. Pinned on the right class is only confidence and is not judged.
* *large, alike logits* (seeds 001/003): the logits (the softmax's input when the model ends in a
  softmax) share a large common value and differ little between classes, and the model does no
  better than always predicting the commonest class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor import tokens
from nndoctor.context import Context
from nndoctor.probes.short_run import Predictions, ShortRun, ShortRunSettings, short_run
from nndoctor.result import Finding, Status, Table
from nndoctor.training import configured_lr

TABLE_ROWS = 10  # classes shown in the histogram table: the most predicted and most labelled
PROBABILITIES_FIX = (
    "The model emits probabilities: drop its final softmax (sigmoid) and give the logits to "
    "CrossEntropyLoss (BCEWithLogitsLoss), which take the log in a numerically stable way; in a "
    "hand-written loss use F.log_softmax, not torch.log(softmax). Then lower the learning rate if "
    "predictions still collapse."
)


@dataclass(frozen=True)
class Decisions:
    """One classification decision per row: its probabilities over the choices and its label."""

    name: str  # "class" for classification and binary, "label 3" for a multilabel column
    probabilities: torch.Tensor  # (N, K) float32
    labels: torch.Tensor  # (N,) in [0, K)
    logits: torch.Tensor | None  # (N, K) the scores before the softmax, when there are any
    emits_probabilities: bool  # the model outputs probabilities (whose log the loss takes), not logits

    def choice(self, k: int) -> str:
        return f"class {k}" if self.name == "class" else f"{self.name} = {k}"

    @property
    def where(self) -> str:
        return "" if self.name == "class" else f" ({self.name})"


@dataclass(frozen=True)
class Spread:
    """How predictions spread over the choices, against the labels."""

    decisions: Decisions
    predicted: torch.Tensor  # share of argmax predictions per choice
    labelled: torch.Tensor  # share of labels per choice
    mass: torch.Tensor  # mean predicted probability per choice
    pinned: float  # share of rows whose top probability is exactly 1.0
    pinned_wrong: float  # ... and whose top choice is wrong
    accuracy: float

    @property
    def top(self) -> int:
        return int(self.predicted.argmax())

    @property
    def over_assignment(self) -> float:
        """How much more probability the top choice gets than its label share, as a share of what
        the labels leave to the other choices: 0 when calibrated, 1 when it gets all with certainty."""
        label = float(self.labelled[self.top])
        return (float(self.mass[self.top]) - label) / (1 - label) if label < 1 else 0.0


@dataclass(frozen=True)
class Alike:
    common: float  # mean |mean over classes of the logits|
    difference: float  # mean std of the logits across classes


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    task = ctx.subject.task
    if task == "regression":
        return Finding.skip("regression: there are no classes to collapse onto")
    settings = ShortRunSettings.for_subject(ctx, thresholds)
    result = ctx.shared(short_run, settings)
    if result.final is None:
        step = result.curve.nonfinite_step
        return Finding.skip(f"the loss turned non-finite at step {step} of the short run, so no predictions to judge (see numerics)")
    after = decisions(ctx, result.final, result.targets)
    if not after:
        return Finding.skip(f"cannot pair the model's output {tuple(result.final.output.shape)} with the targets as {task} decisions")
    before = decisions(ctx, result.initial, result.targets)
    return judge(ctx, result, [spread(d) for d in after], [spread(d) for d in before], thresholds)


def judge(ctx: Context, result: ShortRun, after: list[Spread], before: list[Spread], thresholds: Mapping[str, Any]) -> Finding:
    worst = max(range(len(after)), key=lambda i: (after[i].pinned_wrong, after[i].over_assignment))
    s, s0 = after[worst], before[worst]
    alike = alike_logits(s.decisions.logits)
    metrics = _metrics(s, s0, alike, result)
    evidence = (*_evidence(s, s0, alike, result, ctx), f"trained on {_setup(result, ctx)}")
    tables = (_histogram(s, s0),)
    fix = PROBABILITIES_FIX if s.decisions.emits_probabilities else None
    if s.pinned_wrong >= thresholds["pinned_wrong_fail"]:
        summary = (
            f"{s.pinned_wrong:.0%} of samples get probability exactly 1.0 for a wrong answer{s.decisions.where} "
            f"after {result.curve.steps} steps: {_pinned_consequence(s.decisions)}"
        )
        return Finding(Status.FAIL, summary, metrics, evidence, tables, fix=fix or _lr_fix(ctx), codes=("pinned_wrong",))
    if _collapsed(s, thresholds):
        k = s.top
        summary = (
            f"{s.predicted[k]:.0%} of predictions go to {s.decisions.choice(k)} after {result.curve.steps} steps, "
            f"which holds {s.labelled[k]:.0%} of the labels; mean probability given to it {s.mass[k]:.2f}"
        )
        return Finding(Status.FAIL, summary, metrics, evidence, tables, fix=fix or _collapse_fix(ctx, s), codes=("one_class_takes_over",))
    if alike is not None and _alike(alike, s, thresholds):
        summary = (
            f"logits are large and alike after {result.curve.steps} steps: common value {alike.common:.3g}, "
            f"spread across classes only {alike.difference:.3g}; accuracy {s.accuracy:.2f}, no better than "
            f"always predicting the commonest class ({float(s.labelled.max()):.2f})"
        )
        return Finding(Status.FAIL, summary, metrics, evidence, tables, fix=fix or _lr_fix(ctx), codes=("large_equal_logits",))
    k = s.top
    summary = (
        f"predictions spread like the labels after {result.curve.steps} steps: the most predicted, "
        f"{s.decisions.choice(k)}, takes {s.predicted[k]:.0%} of predictions and {s.mass[k]:.0%} of the "
        f"probability, against {s.labelled[k]:.0%} of the labels"
    )
    return Finding(Status.PASS, summary, metrics, evidence, tables)


def _pinned_consequence(d: Decisions) -> str:
    if d.emits_probabilities:  # the loss takes the log of what the model emitted (seed 000)
        return ("the softmax the model applies is saturated, so no gradient flows back through it, and a loss that "
                "takes the log of these probabilities gets log 0 = -inf for those samples")
    return "the logits have drifted so far apart that the softmax saturates in float32 (a gap above ~17)"


def _collapsed(s: Spread, thresholds: Mapping[str, Any]) -> bool:
    k = s.top
    return (
        float(s.predicted[k]) >= thresholds["dominant_share_fail"]
        and float(s.labelled[k]) <= thresholds["label_share_max"]
        and s.over_assignment >= thresholds["over_assignment_fail"]
    )


def _alike(alike: Alike, s: Spread, thresholds: Mapping[str, Any]) -> bool:
    return (
        alike.common >= thresholds["large_logit"]
        and alike.difference <= thresholds["alike_ratio"] * alike.common
        and s.accuracy <= float(s.labelled.max())
    )


# --- measuring -----------------------------------------------------------------------------------


def decisions(ctx: Context, prediction: Predictions, targets: Any) -> list[Decisions]:
    """The prediction as per-row decisions with labels: one set for classification and binary
    tasks, one per label column for multilabel; empty when output and targets do not pair up."""
    if not isinstance(targets, torch.Tensor):
        return []
    task = ctx.subject.task
    objective = ctx.subject.token_objective
    if objective is not None and tokens.is_token_batch(prediction.output, targets):
        # Each position against the label its loss scores it on (the next token for a causal LM).
        logits = objective.align(prediction.logits, targets)[0] if prediction.logits is not None else None
        output, targets = objective.align(prediction.output, targets)
        prediction = Predictions(output, logits)
    if task == "classification":
        found = _class_decisions(prediction, targets)
        return [found] if found is not None else []
    if prediction.output.numel() != targets.numel():
        return []
    loss = ctx.subject.loss_fn
    emits_probabilities = isinstance(loss, nn.BCELoss) or (
        not isinstance(loss, nn.BCEWithLogitsLoss) and _within_unit(prediction.output)  # a hand-written loss: guess
    )
    scores = prediction.output.float().reshape(targets.shape)
    p = scores if emits_probabilities else scores.sigmoid()
    truth = (targets > 0.5).long()
    if task == "binary" or targets.dim() < 2:
        return [_binary("class", p.reshape(-1), truth.reshape(-1), emits_probabilities)]
    columns = p.reshape(-1, p.shape[-1]), truth.reshape(-1, truth.shape[-1])
    return [_binary(f"label {j}", columns[0][:, j], columns[1][:, j], emits_probabilities) for j in range(p.shape[-1])]


def _binary(name: str, p: torch.Tensor, labels: torch.Tensor, emits_probabilities: bool) -> Decisions:
    return Decisions(name, torch.stack([1 - p, p], dim=1), labels, None, emits_probabilities)


def _class_decisions(prediction: Predictions, targets: torch.Tensor) -> Decisions | None:
    output = prediction.output
    rows = _class_rows(output, targets)
    if rows is None:
        return None
    scores, labels = rows
    logits = _class_rows(prediction.logits, targets)[0] if prediction.logits is not None else None
    emits_probabilities = _is_distribution(scores)
    if emits_probabilities:
        probabilities = scores
    elif _is_log_distribution(scores):  # log_softmax into NLLLoss: as stable as logits
        probabilities = scores.exp()
    else:
        probabilities, logits = scores.softmax(dim=1), scores
    valid = (labels >= 0) & (labels < scores.shape[1])  # ignore_index entries are no decision
    if not bool(valid.any()):
        return None
    return Decisions("class", probabilities[valid], labels[valid], logits[valid] if logits is not None else None, emits_probabilities)


def _class_rows(output: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(N, C) float32 scores and (N,) labels: the class axis is last ((B, C), a sequence model's
    (B, T, C)) or second with targets lacking it (segmentation's (B, C, H, W)); probability or
    one-hot targets give their argmax."""
    if targets.is_floating_point() and targets.shape == output.shape:
        labels = targets.argmax(dim=-1)
    elif not targets.is_floating_point():
        labels = targets
    else:
        return None
    if output.dim() >= 2 and tuple(output.shape[:-1]) == tuple(labels.shape):
        scores = output.reshape(-1, output.shape[-1])
    elif output.dim() > 2 and output.shape[0] == labels.shape[0] and tuple(output.shape[2:]) == tuple(labels.shape[1:]):
        scores = output.movedim(1, -1).reshape(-1, output.shape[1])
    else:
        return None
    return scores.float(), labels.reshape(-1).long()


def _within_unit(values: torch.Tensor) -> bool:
    return bool(((values >= 0) & (values <= 1)).all())


def _is_distribution(scores: torch.Tensor) -> bool:
    return _within_unit(scores) and bool(torch.allclose(scores.sum(dim=1), torch.ones(len(scores), device=scores.device), atol=1e-3))


def _is_log_distribution(scores: torch.Tensor) -> bool:
    return bool((scores <= 0).all()) and _is_distribution(scores.exp())


def spread(d: Decisions) -> Spread:
    n, k = d.probabilities.shape
    top = d.probabilities.max(dim=1)
    predicted = torch.bincount(top.indices.cpu(), minlength=k).float() / max(n, 1)
    labelled = torch.bincount(d.labels.cpu(), minlength=k).float() / max(n, 1)
    right = top.indices == d.labels
    pinned = top.values == 1.0
    return Spread(
        decisions=d,
        predicted=predicted,
        labelled=labelled,
        mass=d.probabilities.mean(dim=0).cpu(),
        pinned=float(pinned.float().mean()),
        pinned_wrong=float((pinned & ~right).float().mean()),
        accuracy=float(right.float().mean()),
    )


def alike_logits(logits: torch.Tensor | None) -> Alike | None:
    if logits is None or logits.shape[1] < 2 or not bool(torch.isfinite(logits).all()):
        return None
    return Alike(
        common=float(logits.mean(dim=1).abs().mean()),
        difference=float(logits.std(dim=1, unbiased=False).mean()),
    )


# --- reporting -----------------------------------------------------------------------------------


def _metrics(s: Spread, s0: Spread, alike: Alike | None, result: ShortRun) -> dict[str, Any]:
    k = s.top
    metrics = {
        "decision": s.decisions.name,
        "most_predicted": k,
        "predicted_share": float(s.predicted[k]),
        "label_share": float(s.labelled[k]),
        "mean_probability": float(s.mass[k]),
        "over_assignment": s.over_assignment,
        "pinned_fraction": s.pinned,
        "pinned_wrong_fraction": s.pinned_wrong,
        "accuracy": s.accuracy,
        "initial_predicted_share": float(s0.predicted.max()),
        "loss_start": result.curve.initial,
        "loss_end": result.curve.final,
        "steps": result.curve.steps,
    }
    if alike is not None:
        metrics.update(logit_common=alike.common, logit_difference=alike.difference)
    return metrics


def _evidence(s: Spread, s0: Spread, alike: Alike | None, result: ShortRun, ctx: Context) -> tuple[str, ...]:
    k0 = s0.top
    lines = [
        f"at init the most predicted, {s0.decisions.choice(k0)}, took {s0.predicted[k0]:.0%} of predictions "
        f"with mean probability {s0.mass[k0]:.2f}",
        f"mini-batch loss {result.curve.initial:.3g} at the first step, {result.curve.final:.3g} at the last; "
        f"accuracy on the samples {s.accuracy:.2f}",
        f"top probability exactly 1.0 for {s.pinned:.0%} of samples{s.decisions.where}, {s.pinned_wrong:.0%} on a wrong answer",
    ]
    if alike is not None:
        source = "the softmax's input" if result.final.logits is not None else "the logits"
        lines.append(f"{source}: common value {alike.common:.3g}, spread across classes {alike.difference:.3g}")
    return tuple(lines)


def _histogram(s: Spread, s0: Spread) -> Table:
    order = torch.argsort(torch.maximum(s.predicted, s.labelled), descending=True)[:TABLE_ROWS]
    rows = tuple(
        (int(c), f"{s.labelled[c]:.1%}", f"{s0.predicted[c]:.1%}", f"{s.predicted[c]:.1%}", f"{s.mass[c]:.3f}")
        for c in sorted(order.tolist())
    )
    name = s.decisions.name
    return Table(
        f"Predictions against labels ({name})",
        (name, "labels", "predicted at init", "predicted after", "mean probability after"),
        rows,
    )


def _setup(result: ShortRun, ctx: Context) -> str:
    settings = result.settings
    n = min(settings.samples, ctx.dataset_size)
    stopped = " (stopped early: every mini-batch of an epoch classified right)" if result.curve.reached_goal else ""
    return (
        f"{n} samples, {result.curve.steps} steps of mini-batches of {min(settings.batch_size, n)}{stopped}, "
        f"optimizer {ctx.subject.optimizer_source}, dropout and weight decay as configured"
    )


def _lr_fix(ctx: Context) -> str:
    lr = configured_lr(ctx)
    at = f" (it is {lr:g})" if lr is not None else ""
    return (
        f"Lower the learning rate{at} 10x at a time until predictions stop saturating (see lr_range), "
        "or clip gradients; keep the model's output as logits into a fused loss (CrossEntropyLoss, BCEWithLogitsLoss)."
    )


def _collapse_fix(ctx: Context, s: Spread) -> str:
    if float(s.labelled[s.top]) >= 0.5:
        return (
            f"The model bets everything on the majority {s.decisions.choice(s.top)}: initialize the final bias to the log "
            "of the class prior instead of a large value, and weight the loss (CrossEntropyLoss(weight=...)) "
            "or oversample the rare classes. " + _lr_fix(ctx)
        )
    return _lr_fix(ctx)
