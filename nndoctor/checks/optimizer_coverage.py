"""optimizer_coverage: does the optimizer hold the parameters that learn in the real loop?

Read by the observer on each optimizer's first steps: parameters with a gradient that no
optimizer holds, optimizer tensors that no observed forward pass used (the model was rebuilt
after the optimizer), and an output layer frozen while other parameters of the model train. Parameters frozen
on purpose (requires_grad False, left out of the optimizer) get no gradient and pass.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.loop import NOT_OBSERVED
from nndoctor.result import Finding, Status


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    if ctx.loop is None:
        return Finding.skip(NOT_OBSERVED)
    coverage = ctx.loop.coverage
    metrics = {"unheld_with_grad": list(coverage.unheld_with_grad), "stale": dict(coverage.stale),
               "frozen_output": list(coverage.frozen_output)}
    problems, codes, evidence = [], [], []
    if coverage.stale:
        problems.append("; ".join(f"{name} holds {n} tensor{'s' if n > 1 else ''} that no forward pass used (a model "
                                  "replaced after the optimizer was built?)" for name, n in coverage.stale.items()))
        codes.append("stale_optimizer")
    if coverage.unheld_with_grad:
        problems.append(f"{len(coverage.unheld_with_grad)} parameter tensor(s) receive gradients that no optimizer holds")
        codes.append("unheld_gradients")
        evidence.append("without an optimizer: " + ", ".join(coverage.unheld_with_grad[:8]))
    if coverage.frozen_output:
        problems.append(f"the output layer {', '.join(coverage.frozen_output)} is frozen while earlier layers train")
        codes.append("frozen_output")
    if problems:
        return Finding(Status.FAIL, "; ".join(problems), metrics, tuple(evidence), codes=tuple(codes))
    held = ", ".join(f"{o.name} holds {o.tensors} tensors ({o.parameters:,} values)" for o in ctx.loop.optimizers)
    return Finding(Status.PASS, f"every parameter that received a gradient is stepped: {held}", metrics)
