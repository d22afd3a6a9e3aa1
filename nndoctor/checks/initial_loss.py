"""initial_loss: the loss at initialization against its chance value (seed 002: "check that your
initial loss is approximately -ln(1/NUM_CLASSES)").

The chance value is what an uninformative prediction scores: ln(C) for cross-entropy, ln 2 for
binary cross-entropy. For a hand-written loss it is measured by feeding the loss all-zero logits.

Regression is judged as regression: the reference is the best constant prediction (the target
mean or median, as overfit_small_batch's baseline), and "confidently wrong" has no meaning there.
An initial loss far above it says the output starts at the wrong scale, which costs steps while
the optimizer shrinks the head, or never closes when an activation bounds the output. So a large
gap is settled by the overfit run (shared with overfit_small_batch): closed within
``close_steps`` steps it passes, closed later it warns (scale the head), never closed it fails.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from nndoctor import tokens
from nndoctor.context import Context
from nndoctor.probes.initial import InitialPass, initial_pass
from nndoctor.probes.overfit import OverfitSettings, best_constant_loss, small_batch_run
from nndoctor.result import Finding, Status


def _prior_entropy(targets: torch.Tensor, task: str, num_classes: int) -> float | None:
    """Entropy of the label distribution: the loss of a model that predicts just the prior."""
    if task == "classification" and not targets.is_floating_point():
        counts = torch.bincount(targets.reshape(-1).clamp(0, max(num_classes - 1, 0)).cpu(), minlength=num_classes).float()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())
    if task in ("binary", "multilabel"):
        p = targets.float().mean().clamp(1e-6, 1 - 1e-6).item()
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))
    return None


def _chance(ctx: Context, output: torch.Tensor, targets: Any) -> tuple[float, str]:
    loss = ctx.subject.loss_fn
    task = ctx.subject.task
    c = ctx.subject.num_classes
    if task == "regression":
        with torch.no_grad():
            constant = best_constant_loss(ctx.subject, output, targets)
        if constant is not None and math.isfinite(constant) and constant > 0:
            return constant, f"the loss of the best constant prediction = {constant:.3g}"
    if isinstance(loss, (nn.CrossEntropyLoss, nn.NLLLoss)) or (task == "classification" and not _is_custom(loss)):
        return math.log(c), f"ln({c}) = {math.log(c):.2f}"
    if isinstance(loss, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return math.log(2), "ln(2) = 0.69 per output"
    with torch.no_grad():
        zero = float(ctx.subject.compute_loss(torch.zeros_like(output), targets))
    if math.isfinite(zero) and zero > 0:
        what = "the loss of predicting zeros" if task == "regression" else "the loss of all-zero logits"
        return zero, f"{what} = {zero:.3g}"
    if task == "classification":
        return math.log(c), f"ln({c}) = {math.log(c):.2f}"
    return math.log(2), "ln(2) = 0.69 per output"


def _tokens(ctx: Context, loss: float, targets: torch.Tensor, t: Mapping[str, Any]) -> Finding:
    """A language model: chance is ln(V) at random init; the unigram entropy of the labels is
    what predicting token frequencies alone scores. A model loaded from pretrained weights (a
    Hugging Face config naming its checkpoint) must start far below chance: at chance, its
    weights did not load."""
    objective = ctx.subject.token_objective
    chance = math.log(objective.vocab)
    unigram = tokens.distribution(objective, targets).get("entropy")
    metrics = {"initial_loss": loss, "expected": chance, "ratio": loss / chance, "prior_entropy": unigram}
    checkpoint = getattr(getattr(ctx.subject.model, "config", None), "name_or_path", "") or ""
    headline = (
        f"initial loss {loss:.3g} per token ({objective.kind}); chance ln({objective.vocab}) = {chance:.2f}"
        + (f", label unigram entropy {unigram:.2f}" if unigram is not None else "")
    )
    if checkpoint:
        metrics["pretrained"] = checkpoint
        if loss >= (unigram if unigram is not None else chance):
            return Finding(
                Status.WARN, f"{headline}: loaded from {checkpoint!r} yet no better than token frequencies", metrics,
                fix="The pretrained weights did not take: check the load's missing/unexpected keys, the tokenizer (same vocabulary as the checkpoint) and that the head is not re-initialized.",
                codes=("pretrained_at_chance",),
            )
        return Finding(Status.PASS, f"{headline}; loaded from {checkpoint!r}, far below chance as pretrained weights should be", metrics)
    ratio = loss / chance
    if ratio > t["fail_ratio"]:
        return Finding(Status.FAIL, f"{headline} ({ratio:.1f}x): the model is confidently wrong at init", metrics,
                       codes=("far_above_chance",))
    if ratio > t["warn_ratio"]:
        return Finding(Status.WARN, f"{headline} ({ratio:.1f}x chance)", metrics, codes=("above_chance",))
    return Finding(Status.PASS, headline, metrics)


def _is_custom(loss: Any) -> bool:
    return not isinstance(loss, nn.modules.loss._Loss)


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    measured = ctx.shared(initial_pass)
    loss, output, targets = measured.loss, measured.output, measured.targets
    if ctx.subject.token_objective is not None and isinstance(targets, torch.Tensor) and math.isfinite(loss):
        return _tokens(ctx, loss, targets, thresholds)
    expected, expected_text = _chance(ctx, output, targets)
    prior = _prior_entropy(targets, ctx.subject.task, ctx.subject.num_classes) if isinstance(targets, torch.Tensor) else None
    metrics = {"initial_loss": loss, "expected": expected, "ratio": loss / expected if expected else None}
    if prior is not None:
        metrics["prior_entropy"] = prior
    headline = f"initial loss {loss:.3g}, expected {expected_text}"
    if not math.isfinite(loss):
        return Finding(Status.FAIL, f"initial loss is {loss}: not finite", metrics, ("see numerics and data_integrity",),
                       codes=("not_finite",))
    if loss < 0 and ctx.subject.task != "regression":
        return Finding(
            Status.FAIL, f"{headline}: a negative cross-entropy", metrics,
            ("a negative log-likelihood means the loss received probabilities, not log-probabilities",),
            fix="Give NLLLoss log-probabilities (log_softmax), or better: emit logits and use CrossEntropyLoss.",
            codes=("negative_cross_entropy",),
        )
    ratio = loss / expected
    if ctx.subject.task == "regression" and ratio > thresholds["warn_ratio"]:
        return _judge_regression_gap(ctx, measured, thresholds, metrics, headline, ratio)
    if ratio > thresholds["fail_ratio"]:
        return Finding(Status.FAIL, f"{headline} ({ratio:.1f}x): the model is confidently wrong at init", metrics,
                       codes=("far_above_chance",))
    if ratio > thresholds["warn_ratio"]:
        return Finding(Status.WARN, f"{headline} ({ratio:.1f}x chance)", metrics, codes=("above_chance",))
    floor = prior if prior is not None else expected
    if floor > 0 and loss < thresholds["low_ratio"] * floor:
        return Finding(
            Status.WARN, f"{headline}: suspiciously low before any training", metrics,
            (f"below {thresholds['low_ratio']} x the loss of predicting the label prior ({floor:.3g})",),
            fix="Make sure the targets cannot be read off the inputs (label leakage) and that the loss is the intended one.",
            codes=("suspiciously_low",),
        )
    return Finding(Status.PASS, headline, metrics)


def _judge_regression_gap(
    ctx: Context, measured: InitialPass, thresholds: Mapping[str, Any], metrics: dict[str, Any], headline: str, ratio: float,
) -> Finding:
    """A regression loss far above the constant baseline: how long the overfit run takes to bring
    it down to that baseline decides (see the module docstring)."""
    settings = OverfitSettings.for_subject(ctx, ctx.thresholds("overfit_small_batch"))  # requires: the shared run
    run = ctx.shared(small_batch_run, settings)
    baseline = run.goal.baseline if run.goal.baseline is not None else metrics["expected"]
    closed = next((step for step, value in enumerate(run.curve.losses) if value <= baseline), None)
    metrics.update({"baseline_reached_at_step": closed, "overfit_baseline": baseline})
    text = f"{headline} ({ratio:.1f}x)"
    if closed is None:
        return Finding(
            Status.FAIL,
            f"{text}: the overfit run never brings the loss down to the best constant prediction's "
            f"{baseline:.3g} ({run.curve.steps} steps, best {min(run.curve.losses):.3g})",
            metrics, ("an output bounded by an activation, or a head the optimizer cannot rescale; see output_head",),
            fix="Make the last layer linear (no tanh/sigmoid/ReLU on a regression output) or rescale the targets into "
                "the output's range, and initialize the head small with its bias at the target mean.",
            codes=("regression_gap_not_closed",),
        )
    if closed <= thresholds["close_steps"]:
        return Finding(
            Status.PASS, f"{text}: an initial output scale the optimizer corrects within {closed} steps "
                         f"(overfit run on the same setup)", metrics,
        )
    return Finding(
        Status.WARN, f"{text}: the output starts at the wrong scale; the overfit run needs {closed} steps to reach the "
                     f"best constant prediction", metrics,
        fix="Scale the head: multiply the last layer's initial weights by 0.1 (or zero them) and set its bias to the "
            "target mean, so training starts at the constant baseline instead of spending steps getting there.",
        codes=("regression_init_scale",),
    )
