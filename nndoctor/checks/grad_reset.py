"""grad_reset: are gradients reset between optimizer steps in the real loop?

The observer watches one parameter per optimizer: before the first backward pass after a step it
sees whether that parameter's gradient was reset (None, or all zeros). Accumulation on purpose
(k passes, then a step, then a reset) resets once per step and passes.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.loop import NOT_OBSERVED
from nndoctor.result import Finding, Status


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    if ctx.loop is None:
        return Finding.skip(NOT_OBSERVED)
    judged = [s for s in ctx.loop.steps if s.grads_reset is not None]
    if not judged:
        return Finding.skip("fewer than two optimizer steps were observed: nothing to compare")
    unreset = [s for s in judged if not s.grads_reset]
    share = len(unreset) / len(judged)
    passes = sorted({s.backward_passes for s in judged if s.backward_passes})
    metrics = {"judged_steps": len(judged), "unreset_steps": len(unreset), "unreset_share": share,
               "backward_passes_per_step": passes}
    if share >= float(thresholds["unreset_share_fail"]):
        names = sorted({s.optimizer for s in unreset})
        return Finding(
            Status.FAIL,
            f"gradients were never reset: {len(unreset)} of {len(judged)} steps of {', '.join(names)} applied the "
            "previous steps' gradients again (no zero_grad() between steps)",
            metrics, codes=("never_reset",),
        )
    accumulation = f", {max(passes)} backward passes per step (gradient accumulation)" if passes and max(passes) > 1 else ""
    return Finding(Status.PASS, f"gradients reset before {len(judged) - len(unreset)} of {len(judged)} steps{accumulation}", metrics)
