"""Likely causes: combine the evidence of all checks into a short ranked list of root causes.

Each cause is a rule: *primary* evidence that names the cause directly (without it the cause is
not proposed) and *supporting* evidence that an experienced engineer would read as consistent
with it (e.g. overfit fails + easy_data fails + output_head fails -> "softmax before
CrossEntropyLoss"). A failed primary check weighs 3, a warning 1; each supporting failure adds 1,
a supporting warning 0.5. Causes are ranked by weight, and each cites the checks behind it.

Weight alone ranks a symptom above its cause when the symptom trips more checks: raw pixel values
saturate every tanh and push the initial loss far off, so "saturated activations" and "poor
initialization" outscore "inputs not normalized". EXPLAINS states which causes produce the
evidence of which others; a proposed cause backed by a failed primary check ranks ahead of every
cause it explains (the explained one is still listed: it may be a second problem).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

from nndoctor.result import Cause, CheckResult, Report, Status

Predicate = Callable[[CheckResult], bool]
PRIMARY = {Status.FAIL: 3.0, Status.WARN: 1.0}
SUPPORT = {Status.FAIL: 1.0, Status.WARN: 0.5}
MAX_CAUSES = 5


def _any(_: CheckResult) -> bool:
    return True


def _summary(pattern: str) -> Predicate:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda result: bool(regex.search(result.summary))


def _metric(key: str, *values: object) -> Predicate:
    return lambda result: result.metrics.get(key) in values


def _overfit(*patterns: str) -> Predicate:
    return _metric("pattern", *patterns)


@dataclass(frozen=True)
class Clue:
    """Evidence from one check: any of ``codes`` (qualified; empty: any finding of the check) in a
    result with one of ``statuses``."""

    check: str
    when: Predicate = _any
    statuses: tuple[Status, ...] = (Status.FAIL, Status.WARN)
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    key: str
    title: str
    fix: str
    primary: tuple[Clue, ...]
    support: tuple[Clue, ...] = ()


# output_head names what it saw in its summary; these patterns sort its findings into causes.
HEAD_PROBABILITIES = _summary(r"probabilities fed to|(?<!BCELoss )takes the log of probabilities|log\(softmax\)|not log-probabilities")
HEAD_SIGMOID_BCE = _summary(r"BCELoss takes the log of probabilities")
HEAD_SQUASHED = _summary(r"squashed|clipped at 0|pass through an activation|predicted probabilities stay within")
HEAD_WIDTH = _summary(r"width")
HEAD_BOUNDED = _summary(r"targets lie outside")
CANNOT_LEARN = (Clue("overfit_small_batch", statuses=(Status.FAIL,)), Clue("easy_data", statuses=(Status.FAIL,)))

RULES: tuple[Rule, ...] = (
    Rule(
        "softmax_before_ce", "Probabilities (softmax) fed to a cross-entropy loss",
        "Return raw logits from the last Linear layer and keep CrossEntropyLoss (it applies log-softmax itself).",
        (Clue("output_head", HEAD_PROBABILITIES),),
        (*CANNOT_LEARN, Clue("prediction_collapse"), Clue("numerics")),
    ),
    Rule(
        "sigmoid_bce", "Sigmoid + BCELoss: the log of saturated probabilities",
        "Drop the final sigmoid and use BCEWithLogitsLoss.",
        (Clue("output_head", HEAD_SIGMOID_BCE),),
        (*CANNOT_LEARN, Clue("numerics")),
    ),
    Rule(
        "squashed_logits", "An activation squashes the logits before the loss",
        "Remove the final ReLU/sigmoid/tanh: the last layer must emit raw logits.",
        (Clue("output_head", HEAD_SQUASHED),),
        (*CANNOT_LEARN, Clue("prediction_collapse")),
    ),
    Rule(
        "output_width", "The output width does not match the number of classes",
        "Make the last layer Linear(features, num_classes).",
        (Clue("output_head", HEAD_WIDTH),),
        (Clue("data_integrity"), *CANNOT_LEARN),
    ),
    Rule(
        "bounded_regression", "A bounded output (tanh/sigmoid) for targets outside its range",
        "Use a linear output layer for regression, or rescale the targets into the output's range.",
        (Clue("output_head", HEAD_BOUNDED),),
        CANNOT_LEARN,
    ),
    Rule(
        "bad_data", "Broken data: NaN/Inf, labels out of range or shapes that broadcast",
        "Fix the data pipeline as data_integrity describes (shift labels, reshape targets, remove NaN).",
        (Clue("data_integrity", statuses=(Status.FAIL,)),),
        (Clue("numerics"), Clue("overfit_small_batch", statuses=(Status.FAIL,))),
    ),
    Rule(
        "numerics", "NaN/Inf during training (log of 0, division by 0)",
        "Use log_softmax / fused losses instead of log(softmax(x)); add eps inside log and sqrt; lower the LR.",
        (Clue("numerics", statuses=(Status.FAIL,)),),
        (Clue("overfit_small_batch", _overfit("exploding")),),
    ),
    Rule(
        "strong_regularization", "Regularization dominates the loss",
        "Lower the weight decay / penalty strength (by 10x or more) or start from smaller weights.",
        (Clue("regularization_ratio"),),
        (*CANNOT_LEARN, Clue("prediction_collapse")),
    ),
    Rule(
        "broken_gradient_path", "Parts of the model get no gradient (detach, unused or not in the optimizer)",
        "Remove the .detach()/no_grad around trained parts and pass every trainable parameter to the optimizer.",
        (Clue("gradient_flow", lambda r: bool(r.metrics.get("no_gradient") or r.metrics.get("not_in_optimizer")),
              statuses=(Status.FAIL,)),),
        (Clue("update_ratio"), *CANNOT_LEARN),
    ),
    Rule(
        "input_ignored", "The prediction does not depend on the input",
        "Check that forward uses its input and that nothing zeroes or detaches it on the way.",
        (Clue("input_dependence", statuses=(Status.FAIL,)),),
        (Clue("overfit_small_batch", _overfit("plateau")), Clue("easy_data", statuses=(Status.FAIL,))),
    ),
    Rule(
        "labels_detached_from_inputs", "The labels do not belong to their inputs",
        "Keep inputs and labels together through every shuffle, sort, split and join (x[perm] with y[perm]); "
        "check that __getitem__ reads the input and the label of the same sample.",
        (Clue("label_signal", statuses=(Status.FAIL,), codes=("label_signal.no_gain",)),),
        (Clue("overfit_small_batch", statuses=(Status.PASS,)),),
    ),
    Rule(
        "label_leak", "An input feature gives the label away",
        "Remove the input feature that is the label or is computed from it (a target column left among the "
        "features, an ID or timestamp sorted by label).",
        (Clue("label_signal", codes=("label_signal.label_in_input", "label_signal.leak")),),
    ),
    Rule(
        "batch_mixing", "Samples of a batch are mixed together",
        "Use permute/transpose (not view/reshape) to reorder axes and keep the batch dimension first.",
        (Clue("batch_independence", statuses=(Status.FAIL,)),),
    ),
    Rule(
        "lr_too_high", "The learning rate is too high",
        "Lower the learning rate to the lr_range suggestion (typically 10x-100x lower).",
        (
            Clue("lr_range", _summary(r"diverg|past|above"), statuses=(Status.FAIL,)),
            Clue("update_ratio", _summary(r"too large|large|high"), statuses=(Status.FAIL,)),
            Clue("overfit_small_batch", _overfit("exploding", "oscillating")),
        ),
        (Clue("prediction_collapse"), Clue("numerics"), Clue("gradient_flow", _summary(r"explod"))),
    ),
    Rule(
        "lr_too_low", "The learning rate is too low",
        "Raise the learning rate towards the lr_range suggestion.",
        (
            Clue("lr_range", _summary(r"below|small|low")),
            Clue("update_ratio", _summary(r"too small|small|low")),
        ),
        (Clue("overfit_small_batch", _overfit("plateau", "still_falling")),),
    ),
    Rule(
        "bad_init", "Poor weight initialization",
        "Initialize with He (ReLU family) or Glorot (tanh/sigmoid); never constant or zero weights.",
        (Clue("weight_init"), Clue("initial_loss", statuses=(Status.FAIL,))),
        (Clue("activation_variance"), Clue("overfit_small_batch", _overfit("drop_then_flat", "plateau")),
         Clue("easy_data", statuses=(Status.FAIL,))),
    ),
    Rule(
        "saturated_activations", "Saturated tanh/sigmoid units stop learning",
        "Scale the initialization down, add normalization, or switch to ReLU-family activations.",
        (Clue("saturation"),),
        (Clue("gradient_flow"), Clue("input_normalization"), Clue("activation_variance")),
    ),
    Rule(
        "dead_relus", "Dead ReLUs: units that never fire",
        "Use He initialization, a small positive bias (0.01), a lower LR, or LeakyReLU.",
        (Clue("dead_relu"),),
        (Clue("gradient_flow"), Clue("overfit_small_batch", statuses=(Status.FAIL,))),
    ),
    Rule(
        "vanishing_gradients", "Gradients vanish with depth",
        "Add residual connections or normalization layers; initialize for the activation (He/Glorot).",
        (Clue("gradient_flow", _summary(r"vanish")), Clue("activation_variance", _metric("direction", "shrinking", "vanishing"))),
        (Clue("saturation"), Clue("overfit_small_batch", statuses=(Status.FAIL,))),
    ),
    Rule(
        "exploding_gradients", "Gradients or activations explode with depth",
        "Scale the initialization down, add normalization, or clip gradients (clip_grad_norm_).",
        (Clue("gradient_flow", _summary(r"explod")), Clue("activation_variance", _metric("direction", "growing", "exploding"))),
        (Clue("numerics"), Clue("overfit_small_batch", _overfit("exploding"))),
    ),
    Rule(
        "unnormalized_inputs", "Inputs are not mean-centered and scaled",
        "Standardize the inputs with training-set statistics: (x - mean) / std per channel.",
        (Clue("input_normalization"),),
        (Clue("saturation"), Clue("dead_relu"), Clue("overfit_small_batch", statuses=(Status.FAIL,))),
    ),
    Rule(
        "class_imbalance", "One class dominates the labels",
        "Weight the loss or resample (WeightedRandomSampler), and set the final bias to the log prior.",
        (Clue("class_balance", statuses=(Status.FAIL,)),),
        (Clue("prediction_collapse"),),
    ),
    Rule(
        "data_or_labels", "The model learns easy data but not yours: look at the data and the labels",
        "Inspect raw examples and their labels; check the preprocessing and the input-label pairing.",
        (Clue("overfit_small_batch", statuses=(Status.FAIL,)),),
        (Clue("data_integrity"), Clue("class_balance"), Clue("input_normalization")),
    ),
)

# upstream cause -> the causes whose evidence it produces by itself. Acyclic, so an order exists.
EXPLAINS: dict[str, tuple[str, ...]] = {
    # labels beyond the head look like a too narrow head; NaN in the data turns up in training
    "bad_data": ("output_width", "numerics"),
    # unscaled inputs scale every activation: saturation, dead or exploding units, an initial loss far off
    "unnormalized_inputs": ("saturated_activations", "dead_relus", "exploding_gradients", "vanishing_gradients", "bad_init"),
    # a NaN/Inf loss at init fails initial_loss, which otherwise points at the initialization
    "numerics": ("bad_init",),
    # vanishing/exploding with depth is what an initial loss far off reads as when the weights
    # themselves look fine (see MECHANISMS); a signal that vanishes with depth also leaves an output
    # that no longer depends on the input
    "exploding_gradients": ("bad_init",),
    "vanishing_gradients": ("bad_init", "input_ignored"),
    # a huge bias or constant weights at init also make the output input-independent
    "bad_init": ("input_ignored",),
    # units that never fire pass no gradient and no input signal
    "dead_relus": ("input_ignored", "broken_gradient_path"),
    # an input that never reaches the output leaves the first layers without gradient
    "input_ignored": ("broken_gradient_path",),
}

# Edges of EXPLAINS that hold only while the explained cause is inferred from symptoms: once the
# check that looks at it directly has flagged it (weight_init for the initialization), it is
# observed, and a mechanism it produces itself cannot explain it (constant weights are the root
# even when gradients vanish; a NaN from log(0) still explains an initial loss of inf).
OBSERVED = {"bad_init": "weight_init"}
MECHANISMS = {("exploding_gradients", "bad_init"), ("vanishing_gradients", "bad_init")}

# data_or_labels only makes sense when the same model, loss and optimizer learned easy data.
REQUIRES_PASS = {"data_or_labels": "easy_data"}


def _matching(clue: Clue, results: dict[str, CheckResult]) -> CheckResult | None:
    result = results.get(clue.check)
    if result is None or result.status not in clue.statuses:
        return None
    if clue.codes and not result.has(*clue.codes):
        return None
    return result if clue.when(result) else None


def _score(rule: Rule, results: dict[str, CheckResult]) -> tuple[float, list[CheckResult]]:
    primary = [r for r in (_matching(c, results) for c in rule.primary) if r is not None]
    if not primary:
        return 0.0, []
    required = REQUIRES_PASS.get(rule.key)
    if required and (results.get(required) is None or results[required].status is not Status.PASS):
        return 0.0, []
    score = max(PRIMARY[r.status] for r in primary) + 0.5 * (len(primary) - 1)
    supporting = [r for r in (_matching(c, results) for c in rule.support) if r is not None and r not in primary]
    score += sum(SUPPORT[r.status] for r in supporting)
    return score, primary + supporting


def rank(results: tuple[CheckResult, ...]) -> tuple[Cause, ...]:
    by_id = {r.id: r for r in results}
    causes = []
    firm = set()  # causes with a failed primary check: firm enough to explain others
    observed = set()  # causes seen directly (OBSERVED): never moved behind another
    for rule in RULES:
        score, behind = _score(rule, by_id)
        if score <= 0:
            continue
        if score >= PRIMARY[Status.FAIL]:
            firm.add(rule.key)
        if rule.key in OBSERVED and OBSERVED[rule.key] in {r.id for r in behind}:
            observed.add(rule.key)
        unique = list(dict.fromkeys(r.id for r in behind))
        evidence = "; ".join(f"{r.id}: {r.summary}" for r in behind[:2])
        causes.append(Cause(key=rule.key, title=rule.title, fix=rule.fix, checks=tuple(unique), score=score, evidence=evidence))
    causes.sort(key=lambda c: -c.score)  # stable: rule order breaks ties (more specific rules first)
    return tuple(_causes_first(causes, firm, observed)[:MAX_CAUSES])


def _causes_first(ranked: list[Cause], firm: set[str], observed: set[str]) -> list[Cause]:
    """``ranked`` with every firm cause moved ahead of the causes it explains (EXPLAINS, also
    through chains; MECHANISMS not for observed causes), the order otherwise kept."""
    edges = {
        upstream: tuple(d for d in downstream if not (d in observed and (upstream, d) in MECHANISMS))
        for upstream, downstream in EXPLAINS.items()
    }
    order = list(ranked)
    moved = True
    while moved:  # terminates: EXPLAINS is acyclic, so each cause moves ahead a bounded number of times
        moved = False
        for i, cause in enumerate(order):
            explainer = next(
                (j for j in range(i + 1, len(order)) if order[j].key in firm and _explains(edges, order[j].key, cause.key)), None
            )
            if explainer is not None:
                order.insert(i, order.pop(explainer))
                moved = True
                break
    return order


def _explains(edges: dict[str, tuple[str, ...]], upstream: str, downstream: str) -> bool:
    pending, seen = list(edges.get(upstream, ())), set()
    while pending:
        key = pending.pop()
        if key == downstream:
            return True
        if key not in seen:
            seen.add(key)
            pending.extend(edges.get(key, ()))
    return False


def add_causes(report: Report, ctx=None) -> Report:
    causes = rank(report.results)
    if ctx is not None and ctx.options.get("try_fixes") and causes:
        from nndoctor import fixes

        causes = fixes.try_fixes(ctx, causes)
    return replace(report, causes=causes)
