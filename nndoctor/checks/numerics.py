"""numerics: where NaN/Inf first appear (seeds 001/003: "a NaN value is fed into the loss
function, for example, as a result of taking the logarithm of 0").

Every training run a check makes through ``training.fit`` is watched: a non-finite loss, or a
non-finite gradient behind a finite loss (sqrt at 0), is traced back to its origin (a parameter,
the data, the first torch call that created it in the forward pass or the loss, or the first
autograd node that created it in the backward pass) and recorded on the Context. This check runs
last and reports those events. One of the runs must be the setup exactly as configured (learning
rate, dropout, weight decay) on real data: prediction_collapse's short run is one (and longer), so
when it ran it is reused; otherwise this check makes a run of its own, ``steps`` full-batch steps.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context, NonFiniteEvent
from nndoctor.probes.short_run import PHASE as SHORT_RUN, short_run
from nndoctor.probes.step import INPUT_ELEMENTS  # a backward pass's input budget: large images get fewer samples
from nndoctor.result import Finding, Status, Table
from nndoctor.training import Curve, fit, make_optimizer

PHASE = "numerics training"
BATCH = 50  # at most (the overfit test's batch); fewer for large inputs

LOG_FIX = (
    "A log of 0: compute log-probabilities with log_softmax / logsigmoid, or better feed logits to a fused loss "
    "(CrossEntropyLoss, BCEWithLogitsLoss); where a log is needed, use torch.log(x.clamp_min(1e-8))."
)
ROOT_FIX = (
    "sqrt (or a fractional power) at 0 has an infinite slope: use torch.sqrt(x + 1e-8), or "
    "torch.linalg.vector_norm for norms, which handles zero vectors."
)
DIVISION_FIX = "A division by zero: add an eps to the denominator (x / (d + 1e-8)) or clamp it away from 0."
EXP_FIX = "exp overflowed: use torch.logsumexp, softplus or log_softmax instead of exp followed by log or a sum."
DATA_FIX = "The data holds NaN/Inf: fix the preprocessing that produced them (data_integrity names the samples)."
INIT_FIX = "The weights are NaN/Inf before any training: fix the initialization or the checkpoint they were loaded from."
EXPLOSION_FIX = (
    "Values grew until they overflowed: lower the learning rate 10x at a time, clip gradients "
    "(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)), and normalize activations."
)
FIXES_BY_OP = {
    **dict.fromkeys(("log", "log2", "log10", "log1p", "xlogy"), LOG_FIX),
    **dict.fromkeys(("sqrt", "rsqrt", "pow", "norm"), ROOT_FIX),
    **dict.fromkeys(("div", "reciprocal", "remainder", "fmod"), DIVISION_FIX),
    **dict.fromkeys(("exp", "exp2", "expm1", "sinh", "cosh"), EXP_FIX),
}
KIND_WORDS = {"output": "the output of", "gradient": "the gradient of", "parameter": "parameter"}


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    try:
        curve, phase = _configured_run(ctx, int(thresholds["steps"]))
    except (IndexError, ValueError, RuntimeError) as exc:  # the loss rejects the real batch: data_integrity says why
        curve, untrainable = None, f"the configured setup cannot train on the real batch ({type(exc).__name__}: {exc})"
    events = _own_run_events(ctx) + list(ctx.nonfinite)
    metrics: dict[str, Any] = {"events": len(events)}
    if curve is not None:
        metrics.update(configured_run=phase, configured_steps=curve.steps, configured_final_loss=curve.final)
    if events:
        return _failure(events, metrics)
    if curve is None:
        return Finding.skip(f"{untrainable}; see data_integrity")
    return Finding(
        Status.PASS,
        f"no NaN/Inf in {curve.steps + 1} forward and {curve.steps} backward passes of the configured setup "
        f"({'its own run' if phase == PHASE else 'the ' + phase + ' of prediction_collapse'}), "
        "nor in any training pass of the other checks",
        metrics,
    )


def _failure(events: list[NonFiniteEvent], metrics: dict[str, Any]) -> Finding:
    """Fail on the first event (the runs are recorded in the order the checks ran), listing all."""
    first = events[0]
    metrics.update(first_phase=first.phase, first_step=first.step, first_where=first.where, first_kind=first.kind, first_op=first.op)
    others = len({(e.where, e.kind, e.op) for e in events} - {(first.where, first.kind, first.op)})
    summary = f"NaN/Inf first appeared in {_describe(first)} at step {first.step} of {first.phase}"
    if others:
        summary += f" (and in {others} other place{'s' if others > 1 else ''}, see the table)"
    table = Table(
        "where NaN/Inf first appeared, per training run",
        ("run", "step", "where", "kind", "op"),
        tuple((e.phase, e.step, e.where, e.kind, e.op or "-") for e in events),
    )
    evidence = tuple(f"{e.phase}, step {e.step}: {_describe(e)}" for e in events[:5])
    return Finding(Status.FAIL, summary, metrics, evidence, tables=(table,), fix=_fix(first))


def _own_run_events(ctx: Context) -> list[NonFiniteEvent]:
    """Where the user's own loop first produced NaN/Inf, when `nndoctor run` observed it: that
    run comes first, since it is the one that matters."""
    seen = ctx.loop.nonfinite if ctx.loop is not None else None
    if seen is None:
        return []
    where = seen.where or ("loss" if seen.kind == "loss" else "the gradients")
    kind = "output" if seen.where else seen.kind
    return [NonFiniteEvent("your own training run", seen.step, where, kind)]


def _configured_run(ctx: Context, steps: int) -> tuple[Curve, str]:
    """A run of the configured setup, unchanged, and its name: the short run when one was made
    (a non-finite loss ends it early, which is what is looked for), else ``steps`` full-batch
    steps of its own. ``fit`` records what breaks in either."""
    earlier = ctx.computed(short_run)
    if earlier:
        return earlier[0].curve, SHORT_RUN
    inputs, targets = ctx.batch(ctx.samples_within(INPUT_ELEMENTS, most=BATCH))
    model = ctx.subject.fresh_model()
    ctx.seed_everything()
    return fit(ctx, model, inputs, targets, steps, make_optimizer(ctx, model), PHASE), PHASE


def _describe(event: NonFiniteEvent) -> str:
    """'the output of encoder.layers.0 (log)', 'the loss (log)', 'the input data'."""
    if event.kind == "input":
        return "the input data" if event.where == "input" else "the targets"
    if event.where == "loss":
        place = "the gradient of the loss" if event.kind == "gradient" else "the loss"
    else:
        place = f"{KIND_WORDS.get(event.kind, event.kind)} {event.where}"
    return f"{place} ({event.op})" if event.op else place


def _fix(event: NonFiniteEvent) -> str | None:
    if event.kind == "input":
        return DATA_FIX
    if event.op in FIXES_BY_OP:
        return FIXES_BY_OP[event.op]
    if event.kind == "parameter" and event.step == 0:
        return INIT_FIX
    if event.kind == "parameter" or event.step > 0:
        return EXPLOSION_FIX
    return None  # the catalog's general advice
