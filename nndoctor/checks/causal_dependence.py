"""causal_dependence: in next-token prediction, output t must not depend on inputs after t
(Karpathy, "A Recipe for Training Neural Networks": "use backprop to chart dependencies", here
along the sequence axis).

A language model whose attention is not causally masked sees, at position t, the token it is
asked to predict: it copies it, its training loss falls below the entropy of the data, and it is
useless for generation. The chart: in eval mode, the input tokens after a cut position are
replaced by other tokens of the batch, and every output at or before the cut must stay the same.
Several cuts (a quarter, half and three quarters of the length, and the last position) give the
earliest position that sees the future. Changing the tokens, rather than taking gradients, sees
dependencies that no gradient carries (masks built from the tokens, routing).

Applies to token objectives recognised as next-token prediction (nndoctor/tokens.py): a loss
shifted by one position (Hugging Face causal LMs), or labels that are the inputs shifted by one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from nndoctor import tokens
from nndoctor.context import Context
from nndoctor.result import Finding, Status, Table


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    objective = ctx.subject.token_objective
    if objective is None or not objective.causal:
        return Finding.skip("not a next-token objective: outputs may depend on every position of their sequence")
    inputs, targets = ctx.batch(int(thresholds["samples"]))
    ids = _token_ids(inputs, targets)
    if ids is None:
        return Finding.skip("no integer token tensor shaped like the labels among the inputs: nothing to perturb")
    length = ids.shape[1]
    model = ctx.subject.fresh_model().eval()
    # Only outputs the loss scores are judged: a prefix LM may read its whole (unscored) prompt.
    scored = objective.scored_outputs(targets).unsqueeze(-1)
    base = _predict(ctx, model, inputs) * scored
    cuts = sorted({max(0, min(length - 2, round(length * share))) for share in (0.25, 0.5, 0.75)} | {length - 2})
    tolerance = float(thresholds["change_tolerance"])
    rows = []
    for cut in cuts:
        changed = _predict(ctx, model, _with_future(inputs, ids, cut, ctx.subject.seed)) * scored
        change = _relative_change(base[:, : cut + 1], changed[:, : cut + 1])
        rows.append((cut, change, _first_changed(base, changed, cut, tolerance)))
    leaking = [(cut, change, first) for cut, change, first in rows if change > tolerance]
    metrics = {"length": length, "cuts": [r[0] for r in rows], "changes": [_number(r[1]) for r in rows]}
    table = Table(
        "Outputs up to a position, when the tokens after it change",
        ("inputs changed after position", "change of outputs at or before it", "earliest output that changed"),
        tuple((cut, _percent(change), "-" if first is None else first) for cut, change, first in rows),
    )
    evidence = (
        f"{objective.kind}: {ctx.subject.loss_source or 'the loss'}",
        f"eval mode, {ids.shape[0]} sequences of {length} tokens; tokens after each cut replaced by other tokens of the batch; "
        "only outputs the loss scores are compared",
    )
    if leaking:
        cut, change, first = leaking[0]
        metrics["first_leaking_position"] = first
        summary = (
            f"output {first} depends on input tokens after it: changing the tokens after position {cut} changes the "
            f"outputs up to it by {_percent(change)}. The model sees the tokens it must predict (no causal mask?)"
        )
        return Finding(Status.FAIL, summary, metrics, evidence, (table,), codes=("sees_future",))
    summary = f"no output depends on later tokens: changing the tokens after positions {', '.join(map(str, cuts))} left every earlier output unchanged"
    return Finding(Status.PASS, summary, metrics, evidence, (table,))


def _token_ids(inputs: Any, targets: Any) -> torch.Tensor | None:
    ids = tokens.input_ids(inputs)
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dim() != 2 or ids.shape[1] < 2:
        return None
    if isinstance(targets, torch.Tensor) and targets.shape != ids.shape:
        return None
    return ids


def _with_future(inputs: Any, ids: torch.Tensor, cut: int, seed: int) -> Any:
    """The inputs with every token after ``cut`` replaced by another token that occurs in the
    batch (a valid id for the model's embedding), drawn so that it differs where it can."""
    values = torch.unique(ids)
    generator = torch.Generator().manual_seed(seed)
    future = ids[:, cut + 1:].contiguous()
    picks = values[torch.randint(len(values), future.shape, generator=generator)].to(ids.device)
    if len(values) > 1:  # where the draw repeats the token, take the next distinct one
        position = torch.searchsorted(values.to(ids.device), future)
        picks = torch.where(picks == future, values.to(ids.device)[(position + 1) % len(values)], picks)
    changed = ids.clone()
    changed[:, cut + 1:] = picks
    if isinstance(inputs, dict):
        return {**inputs, "input_ids": changed}
    return changed


def _predict(ctx: Context, model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        ctx.seed_everything()  # random ops draw the same in every pass
        return ctx.subject.predict(model, inputs).detach().double()


def _relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    scale = float(before.norm())
    difference = float((after - before).norm())
    if difference == 0:
        return 0.0
    return difference / scale if scale > 0 and math.isfinite(difference) else math.inf


def _first_changed(before: torch.Tensor, after: torch.Tensor, cut: int, tolerance: float) -> int | None:
    """The earliest position at or before ``cut`` whose outputs changed beyond ``tolerance``."""
    scale = float(before.norm()) / math.sqrt(before.shape[0] * before.shape[1]) or 1.0
    per_position = (after - before).transpose(0, 1).reshape(before.shape[1], -1).norm(dim=1) / math.sqrt(before.shape[0])
    changed = [t for t in range(cut + 1) if float(per_position[t]) / scale > tolerance]
    return changed[0] if changed else None


def _percent(value: float) -> str:
    return "an unbounded amount" if math.isinf(value) else f"{100 * value:.3g}%"


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"
