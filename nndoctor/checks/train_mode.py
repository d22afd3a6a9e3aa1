"""train_mode: do the training forward passes run dropout and batch norm in train mode?

The observer counts, per dropout and batch-norm module, the forward passes under autograd in
train and in eval mode, and whether the module takes part in training (batch norm: its own affine
parameters are stepped; otherwise its parent's parameters are). A frozen part kept in eval while
the rest trains is on purpose and passes.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.loop import NOT_OBSERVED
from nndoctor.result import Finding, Status, Table


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    if ctx.loop is None:
        return Finding.skip(NOT_OBSERVED)
    modes = ctx.loop.modes
    if not modes:
        return Finding(Status.PASS, "the models have no dropout or batch norm: train and eval mode compute the same")
    eval_share = float(thresholds["eval_share_fail"])
    in_eval = [m for m in modes if m.trained and m.eval_steps > eval_share * (m.train_steps + m.eval_steps)]
    high = [m for m in modes if m.kind == "dropout" and m.p is not None and m.p >= float(thresholds["dropout_fail"])
            and m.train_steps > 0]
    table = Table("mode-dependent modules at the observed steps",
                  ("module", "kind", "p", "train", "eval", "trained"),
                  tuple((m.module, m.kind, "-" if m.p is None else m.p, m.train_steps, m.eval_steps,
                         "yes" if m.trained else "frozen") for m in modes))
    metrics = {"modules": len(modes), "eval_in_training": [m.module for m in in_eval],
               "high_dropout": {m.module: m.p for m in high}}
    problems, codes = [], []
    if in_eval:
        names = ", ".join(m.module for m in in_eval[:5])
        problems.append(f"{len(in_eval)} module(s) that train were in eval mode during training steps ({names}): "
                        "model.eval() is still on during training")
        codes.append("eval_mode")
    if high:
        problems.append("dropout drops most units: " + ", ".join(f"{m.module} p={m.p:g}" for m in high)
                        + " (a keep probability written as p?)")
        codes.append("high_dropout")
    if problems:
        return Finding(Status.FAIL, "; ".join(problems), metrics, tables=(table,), codes=tuple(codes))
    frozen = sum(1 for m in modes if not m.trained)
    note = f" ({frozen} in frozen parts, not judged)" if frozen else ""
    return Finding(Status.PASS, f"{len(modes) - frozen} dropout/batch-norm module(s) trained in train mode{note}",
                   metrics, tables=(table,))
