"""numerics: where NaN/Inf first appear (seeds 001/003: "a NaN value is fed into the loss
function, for example, as a result of taking the logarithm of 0").

Every training run made through ``training.fit`` is watched: a non-finite loss, or a non-finite
gradient behind a finite loss (sqrt at 0), is traced back to its origin (a parameter, the data,
the first torch call that created it in the forward pass or the loss, or the first autograd node
that created it in the backward pass) and returned with the run. This check reads three shared
runs (the first gradient step, the overfit run and prediction_collapse's short run, which is the
setup exactly as configured: learning rate, dropout, weight decay), the same ones whichever
checks were selected; the runs are shared, so they cost nothing extra when those checks run.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context, NonFiniteEvent
from nndoctor.probes.overfit import PHASE as OVERFIT_RUN
from nndoctor.probes.overfit import OverfitSettings, small_batch_run
from nndoctor.probes.short_run import PHASE as SHORT_RUN
from nndoctor.probes.short_run import ShortRunSettings, short_run
from nndoctor.probes.step import gradient_step
from nndoctor.result import Finding, Status, Table

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
    runs = _watched_runs(ctx)
    events = _own_run_events(ctx) + [event for _, event in runs if event is not None]
    metrics: dict[str, Any] = {"events": len(events), "runs": [name for name, _ in runs]}
    if events:
        return _failure(events, metrics)
    if not runs:
        return Finding.skip("the configured setup cannot train on the real batch; see data_integrity")
    return Finding(Status.PASS, f"no NaN/Inf in {', '.join(name for name, _ in runs)}", metrics)


def _watched_runs(ctx: Context) -> list[tuple[str, NonFiniteEvent | None]]:
    """The shared runs this check reads (catalog ``requires``): the first gradient step, the
    overfit run (regularization off) and prediction_collapse's short run of the configured setup
    (learning rate, dropout, weight decay on), each with the first NaN/Inf it met. The same runs
    whatever else was selected, and computed once for every check that uses them. A run the real
    batch cannot feed (a loss that rejects its labels) is left out: data_integrity says why."""
    probes = (
        ("the first gradient step", lambda: ctx.shared(gradient_step).nonfinite),
        (OVERFIT_RUN, lambda: ctx.shared(small_batch_run, OverfitSettings.for_subject(ctx, ctx.thresholds("overfit_small_batch"))).curve.nonfinite),
        (SHORT_RUN, lambda: ctx.shared(short_run, ShortRunSettings.for_subject(ctx, ctx.thresholds("prediction_collapse"))).curve.nonfinite),
    )
    runs = []
    for name, event in probes:
        try:
            runs.append((name, event()))
        except (IndexError, ValueError, RuntimeError):  # the loss rejects the real batch
            continue
    return runs


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
    return Finding(Status.FAIL, summary, metrics, evidence, tables=(table,), fix=_fix(first), codes=(f"nonfinite_{first.kind}",))


def _own_run_events(ctx: Context) -> list[NonFiniteEvent]:
    """Where the user's own loop first produced NaN/Inf, when `nndoctor run` observed it: that
    run comes first, since it is the one that matters."""
    seen = ctx.loop.nonfinite if ctx.loop is not None else None
    if seen is None:
        return []
    where = seen.where or ("loss" if seen.kind == "loss" else "the gradients")
    kind = "output" if seen.where else seen.kind
    return [NonFiniteEvent("your own training run", seen.step, where, kind)]


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
