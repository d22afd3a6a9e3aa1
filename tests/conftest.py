"""Test helpers: run one check in-process on objects and get its CheckResult."""

from __future__ import annotations

from typing import Any

import pytest
import torch

# The suite's models are tiny: threads add nothing but contention, which on a shared 2-core
# machine was measured to slow torch down up to 20x.
torch.set_num_threads(1)

from nndoctor import api
from nndoctor.result import CheckResult


def run_check(
    check_id: str, model, dataset, loss_fn=None, optimizer=None, task=None, thresholds=None, also=None, **kwargs: Any,
) -> CheckResult:
    """``thresholds`` overrides the check's own; ``also`` maps other check ids to overrides (the
    settings of shared runs the check reads, catalog ``requires``)."""
    overrides = {**(also or {}), **({check_id: thresholds} if thresholds else {})}
    report = api.check(
        model, dataset, loss_fn=loss_fn, optimizer=optimizer, task=task, only=[check_id],
        thresholds=overrides or None, device="cpu", **kwargs,
    )
    result = report.result(check_id)
    assert result is not None, f"{check_id} did not run"
    assert result.error is None, result.error
    return result


def run_case(check_id: str, case, **kwargs: Any) -> CheckResult:
    return run_check(check_id, case.model, case.dataset, case.loss_fn, case.optimizer, case.task, **case.kwargs, **kwargs)


@pytest.fixture
def check():
    return run_check


@pytest.fixture(autouse=True)
def _seeded():
    """Every test builds its models from the same global RNG state, whatever ran before it:
    check() leaves the caller's random state as it found it, so nothing else would reset it."""
    torch.manual_seed(0)
