"""Keep the checklist in your own test suite: ``assert_trainable`` fails a test the way a failed
``nndoctor check`` fails a CI job, with a message that says what is wrong and how to fix it.

    from nndoctor.testing import assert_trainable

    def test_model_can_learn():
        assert_trainable(build_model(), build_dataset(), loss_fn=nn.CrossEntropyLoss(), quick=True)
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.data import Dataset

from nndoctor.api import check
from nndoctor.result import CheckResult, Report, Status


def assert_trainable(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Any = None,
    optimizer: Any = None,
    *,
    fail_on: str = "fail",
    **options: Any,
) -> Report:
    """Run ``nndoctor.check`` and raise AssertionError unless the report passes.

    ``fail_on="warn"`` makes warnings fail too. ``options`` are check()'s other arguments (task,
    only, skip, thresholds, quick, device, seed, output, target_key, ...). Returns the Report, for
    further assertions on single checks.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    report = check(model, dataset, loss_fn=loss_fn, optimizer=optimizer, fail_on=fail_on, **options)
    if not report.passed:
        raise AssertionError(failure_message(report))
    return report


def failure_message(report: Report) -> str:
    """One block per check that fails the report: status, id, summary, then its fix and evidence."""
    blocking = [r for r in report.results if report.fails(r)]
    counts = report.counts()
    tally = ", ".join(f"{counts[s.value]} {s.value}" for s in Status if counts[s.value])
    lines = [f"nndoctor: {len(blocking)} check(s) failed the model ({tally}; fail_on={report.fail_on.value})"]
    for result in blocking:
        lines.extend(_describe(result))
    errors = [r for r in report.results if r.status is Status.ERROR]
    if errors:
        lines.append("checks that crashed (not counted): " + ", ".join(f"{r.id} ({r.summary})" for r in errors))
    return "\n".join(lines)


def _describe(result: CheckResult) -> list[str]:
    lines = [f"  {result.status.value.upper()} {result.id}: {result.summary}"]
    if result.fix:
        lines.append(f"      fix: {result.fix}")
    lines.extend(f"      - {line}" for line in result.evidence[:3])
    return lines
