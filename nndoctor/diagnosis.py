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

from dataclasses import dataclass, replace

from nndoctor.result import Cause, CheckResult, Report, Status

PRIMARY = {Status.FAIL: 3.0, Status.WARN: 1.0}
# a pass counts where a rule asks for one (overfit_small_batch passing: the model can fit, the labels are the problem)
SUPPORT = {Status.FAIL: 1.0, Status.WARN: 0.5, Status.PASS: 0.5}
MAX_CAUSES = 5


@dataclass(frozen=True)
class Clue:
    """Evidence from one check: a result with one of ``statuses`` that carries any of ``codes``
    (qualified finding codes; empty: any finding of the check)."""

    check: str
    codes: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = (Status.FAIL, Status.WARN)


def clue(check: str, *codes: str, fail_only: bool = False) -> Clue:
    """A clue on ``check``'s findings ``codes`` (short keys, qualified here)."""
    statuses = (Status.FAIL,) if fail_only else (Status.FAIL, Status.WARN)
    return Clue(check, tuple(f"{check}.{code}" for code in codes), statuses)


@dataclass(frozen=True)
class Rule:
    key: str
    title: str
    fix: str
    primary: tuple[Clue, ...]
    support: tuple[Clue, ...] = ()


def _overfit(*patterns: str) -> Clue:
    return clue("overfit_small_batch", *patterns)


CANNOT_LEARN = (clue("overfit_small_batch", fail_only=True), clue("easy_data", fail_only=True))

RULES: tuple[Rule, ...] = (
    Rule(
        "softmax_before_ce", "Probabilities (softmax) fed to a cross-entropy loss",
        "Return raw logits from the last Linear layer and keep CrossEntropyLoss (it applies log-softmax itself).",
        (clue("output_head", "probabilities_to_ce", "probabilities_to_nll", "not_log_probabilities",
              "log_softmax_in_two_steps", "log_of_probabilities"),),
        (*CANNOT_LEARN, clue("prediction_collapse"), clue("numerics")),
    ),
    Rule(
        "sigmoid_bce", "Sigmoid + BCELoss: the log of saturated probabilities",
        "Drop the final sigmoid and use BCEWithLogitsLoss.",
        (clue("output_head", "bce_on_probabilities"),),
        (*CANNOT_LEARN, clue("numerics")),
    ),
    Rule(
        "squashed_logits", "An activation squashes the logits before the loss",
        "Remove the final ReLU/sigmoid/tanh: the last layer must emit raw logits.",
        (clue("output_head", "squashed_logits", "relu_on_logits", "activation_on_logits"),),
        (*CANNOT_LEARN, clue("prediction_collapse")),
    ),
    Rule(
        "output_width", "The output width does not match the number of classes",
        "Make the last layer Linear(features, num_classes).",
        (clue("output_head", "too_narrow", "too_wide", "single_logit"),),
        (clue("data_integrity"), *CANNOT_LEARN),
    ),
    Rule(
        "bounded_regression", "A bounded output (tanh/sigmoid) for targets outside its range",
        "Use a linear output layer for regression, or rescale the targets into the output's range.",
        (clue("output_head", "targets_outside_bounded_output"),),
        CANNOT_LEARN,
    ),
    Rule(
        "bad_data", "Broken data: NaN/Inf, labels out of range or shapes that broadcast",
        "Fix the data pipeline as data_integrity describes (shift labels, reshape targets, remove NaN).",
        (clue("data_integrity", fail_only=True),),
        (clue("numerics"), clue("overfit_small_batch", fail_only=True)),
    ),
    Rule(
        "numerics", "NaN/Inf during training (log of 0, division by 0)",
        "Use log_softmax / fused losses instead of log(softmax(x)); add eps inside log and sqrt; lower the LR.",
        (clue("numerics", fail_only=True),),
        (_overfit("exploding"),),
    ),
    Rule(
        "strong_regularization", "Regularization dominates the loss",
        "Lower the weight decay / penalty strength (by 10x or more) or start from smaller weights.",
        (clue("regularization_ratio"),),
        (*CANNOT_LEARN, clue("prediction_collapse")),
    ),
    Rule(
        "broken_gradient_path", "Parts of the model get no gradient (detach, unused or not in the optimizer)",
        "Remove the .detach()/no_grad around trained parts and pass every trainable parameter to the optimizer.",
        (clue("gradient_flow", "module_not_run", "gradient_cut_off", "zero_gradient", "not_in_optimizer", fail_only=True),),
        (clue("update_ratio"), *CANNOT_LEARN),
    ),
    Rule(
        "nothing_trains", "Nothing trainable learns (all frozen, cut off by checkpointing, or static adapters)",
        "Keep the parameters meant to train trainable and connected to the loss, and build the optimizer from the final model.",
        (clue("trainable_params", "nothing_trainable", "loss_not_connected", "adapters_frozen", "adapters_static",
              fail_only=True),),
        (clue("gradient_flow"), clue("update_ratio"), *CANNOT_LEARN),
    ),
    Rule(
        "fp16_precision", "Float16 weights: Adam's eps rounds to 0 or activations overflow",
        "Keep float32 master weights under torch.autocast with a GradScaler (or use bfloat16); in pure float16 raise Adam's eps to 1e-4.",
        (clue("precision", "fp16_adam_eps", "fp16_overflow", fail_only=True),),
        (clue("numerics"), *CANNOT_LEARN),
    ),
    Rule(
        "input_ignored", "The prediction does not depend on the input",
        "Check that forward uses its input and that nothing zeroes or detaches it on the way.",
        (clue("input_dependence", fail_only=True),),
        (_overfit("plateau"), clue("easy_data", fail_only=True)),
    ),
    Rule(
        "labels_detached_from_inputs", "The labels do not belong to their inputs",
        "Keep inputs and labels together through every shuffle, sort, split and join (x[perm] with y[perm]); "
        "check that __getitem__ reads the input and the label of the same sample.",
        (clue("label_signal", "no_gain", fail_only=True),),
        (Clue("overfit_small_batch", statuses=(Status.PASS,)),),
    ),
    Rule(
        "label_leak", "An input feature gives the label away",
        "Remove the input feature that is the label or is computed from it (a target column left among the "
        "features, an ID or timestamp sorted by label).",
        (clue("label_signal", "label_in_input", "leak"),),
    ),
    Rule(
        "batch_mixing", "Samples of a batch are mixed together",
        "Use permute/transpose (not view/reshape) to reorder axes and keep the batch dimension first.",
        (clue("batch_independence", "samples_mix", fail_only=True),),
    ),
    Rule(
        "batch_position", "Each sample's prediction depends on its position in the batch",
        "Index positional encodings by the sequence axis (pe[:, :x.size(1)] for batch-first tensors), never by the batch axis.",
        (clue("batch_independence", "batch_position", fail_only=True),),
    ),
    Rule(
        "labels_masked", "Token labels are masked away (every label, or the end-of-sequence token)",
        "Mask padding through the attention mask (labels[attention_mask == 0] = -100), not by token id, and keep answer tokens unmasked.",
        (clue("class_balance", "all_labels_ignored", "eos_label_ignored"),),
        (clue("numerics"), clue("overfit_small_batch")),
    ),
    Rule(
        "future_leak", "The language model sees the tokens it must predict (no causal mask)",
        "Mask attention causally (is_causal=True / a square subsequent mask) or use a decoder model class.",
        (clue("causal_dependence", "sees_future", fail_only=True),),
        (clue("overfit_small_batch"),),
    ),
    Rule(
        "lr_too_high", "The learning rate is too high",
        "Lower the learning rate to the lr_range suggestion (typically 10x-100x lower).",
        (
            clue("lr_range", "past_divergence", "diverges_from_init", fail_only=True),
            clue("update_ratio", "too_large", fail_only=True),
            _overfit("exploding", "oscillating"),
        ),
        (clue("prediction_collapse"), clue("numerics"), clue("gradient_flow", "exploding_with_depth", "exploding_everywhere")),
    ),
    Rule(
        "lr_too_low", "The learning rate is too low",
        "Raise the learning rate towards the lr_range suggestion.",
        (clue("lr_range", "too_low", "zero_lr"), clue("update_ratio", "too_small")),
        (_overfit("plateau", "still_falling"),),
    ),
    Rule(
        "bad_init", "Poor weight initialization",
        "Initialize with He (ReLU family) or Glorot (tanh/sigmoid); never constant or zero weights.",
        (clue("weight_init"), clue("initial_loss", "far_above_chance", "not_finite", fail_only=True)),
        (clue("activation_variance"), _overfit("drop_then_flat", "plateau"), clue("easy_data", fail_only=True)),
    ),
    Rule(
        "saturated_activations", "Saturated tanh/sigmoid units stop learning",
        "Scale the initialization down, add normalization, or switch to ReLU-family activations.",
        (clue("saturation"),),
        (clue("gradient_flow"), clue("input_normalization"), clue("activation_variance")),
    ),
    Rule(
        "dead_relus", "Dead ReLUs: units that never fire",
        "Use He initialization, a small positive bias (0.01), a lower LR, or LeakyReLU.",
        (clue("dead_relu"),),
        (clue("gradient_flow"), clue("overfit_small_batch", fail_only=True)),
    ),
    Rule(
        "vanishing_gradients", "Gradients vanish with depth",
        "Add residual connections or normalization layers; initialize for the activation (He/Glorot).",
        (clue("gradient_flow", "vanishing_with_depth", "vanishing_everywhere"), clue("activation_variance", "vanishing")),
        (clue("saturation"), clue("overfit_small_batch", fail_only=True)),
    ),
    Rule(
        "exploding_gradients", "Gradients or activations explode with depth",
        "Scale the initialization down, add normalization, or clip gradients (clip_grad_norm_).",
        (clue("gradient_flow", "exploding_with_depth", "exploding_everywhere"), clue("activation_variance", "exploding")),
        (clue("numerics"), _overfit("exploding")),
    ),
    Rule(
        "unnormalized_inputs", "Inputs are not mean-centered and scaled",
        "Standardize the inputs with training-set statistics: (x - mean) / std per channel.",
        (clue("input_normalization"),),
        (clue("saturation"), clue("dead_relu"), clue("overfit_small_batch", fail_only=True)),
    ),
    Rule(
        "class_imbalance", "One class dominates the labels",
        "Weight the loss or resample (WeightedRandomSampler), and set the final bias to the log prior.",
        (clue("class_balance", fail_only=True),),
        (clue("prediction_collapse"),),
    ),
    Rule(
        "loss_rewards_errors", "The loss rewards errors: training climbs it, or it falls without bound",
        "Minimize a loss that measures error: no `-criterion(...)`, no maximize=True, a positive learning rate, "
        "`p -= lr * grad` in a hand-written update, and a loss bounded below (not a similarity or an accuracy).",
        (_overfit("rising"), clue("easy_data", "rising")),
        (clue("initial_loss", "negative_cross_entropy"),),
    ),
    Rule(
        "data_or_labels", "The model learns easy data but not yours: look at the data and the labels",
        "Inspect raw examples and their labels; check the preprocessing and the input-label pairing.",
        (clue("overfit_small_batch", fail_only=True),),
        (clue("data_integrity"), clue("class_balance"), clue("input_normalization")),
    ),
    # The real loop, as `nndoctor run` observed it: each cause is named by its own finding code.
    Rule(
        "gradients_not_reset", "Gradients are never reset between optimizer steps (missing zero_grad)",
        "Call optimizer.zero_grad() once per optimizer step, right after optimizer.step().",
        (clue("grad_reset", "never_reset"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "optimizer_on_replaced_model", "The optimizer was built on a model that was then replaced",
        "Build the optimizer after the final model: optimizer = Adam(model.parameters()).",
        (clue("optimizer_coverage", "stale_optimizer"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "parameters_left_out", "Parameters that learn are left out of the optimizer, or the classifier is frozen",
        "Pass every parameter that should train to the optimizer and keep the output layer trainable.",
        (clue("optimizer_coverage", "unheld_gradients", "frozen_output"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "eval_mode_training", "The model trains in eval mode (model.train() missing after evaluation)",
        "Call model.train() at the start of every training epoch.",
        (clue("train_mode", "eval_mode"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "dropout_keep_probability", "Dropout given a keep probability: it drops most units",
        "nn.Dropout(p) takes the probability of dropping a unit: use 0.1-0.5.",
        (clue("train_mode", "high_dropout"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "lr_schedule_misapplied", "The learning-rate schedule is stepped or computed wrongly",
        "Step per-epoch schedulers once per epoch (or give them their length in steps); return a factor from LambdaLR.",
        (clue("lr_schedule", "collapsed", "past_end", "squared"),),
        (clue("loss_progress"),),
    ),
    Rule(
        "loss_detached", "The loss is cut off from the model: backward reaches no parameter",
        "Backpropagate the loss tensor itself: add penalties as tensors (loss + penalty), never rebuild it "
        "with torch.tensor(loss.item()), and compute it outside torch.no_grad().",
        (clue("loss_progress", "no_gradient"),),
    ),
    Rule(
        "clipping_too_tight", "Gradient clipping shrinks every step to a small fraction",
        "Clip at a norm near the typical gradient norm (clip_grad_norm_(params, 1.0)), not far below it.",
        (clue("loss_progress", "always_clipped"),),
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
    # a loss that rewards errors makes the learning-rate sweep chase it (the steepest "descent" lies
    # at huge rates) and the initial loss read as far off
    "loss_rewards_errors": ("lr_too_low", "lr_too_high", "bad_init"),
    # units that never fire pass no gradient and no input signal
    "dead_relus": ("input_ignored", "broken_gradient_path"),
    # a float16 step dividing by a zero eps, or an overflowing float16 activation, is where the NaN/Inf comes from
    "fp16_precision": ("numerics", "lr_too_high", "exploding_gradients"),
    # with nothing to train no learning rate lowers the loss and no gradient flows anywhere
    "nothing_trains": ("lr_too_low", "broken_gradient_path", "input_ignored", "data_or_labels"),
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
    return result if not clue.codes or result.has(*clue.codes) else None


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


def rank(results: tuple[CheckResult, ...], rules: tuple[Rule, ...] | None = None) -> tuple[Cause, ...]:
    """The likely causes of what failed, by RULES or by other ``rules`` on the same evidence (the
    watcher's timeline). Without a failed check there is no failure to explain:
    warnings carry their own fixes, and a cause read from warnings alone would name a root cause
    for a model that trains (a stock transformer's 0.02 init warned at a tiny width, say)."""
    if not any(r.status is Status.FAIL for r in results):
        return ()
    by_id = {r.id: r for r in results}
    causes = []
    firm = set()  # causes with a failed primary check: firm enough to explain others
    observed = set()  # causes seen directly (OBSERVED): never moved behind another
    for rule in RULES if rules is None else rules:
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


def add_causes(report: Report) -> Report:
    """The report with its likely causes ranked: a pure function of the results."""
    return replace(report, causes=rank(report.results))
