"""A report never contradicts itself: a passing check's summary does not read like a problem, and
a per-row verdict column agrees with the check's status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nndoctor.engine import run_path
from nndoctor.options import RunOptions
from nndoctor.result import Status

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"
CASES = [
    "sound_mlp_blobs", "sound_normalized_pixels_mlp", "sound_gru_tokens", "sound_imbalance_weighted_loss",
    "broken_raw_pixels_mlp_grayscale", "broken_softmax_before_ce_mlp", "broken_zero_init_mlp", "broken_sigmoid_bce_binary",
]
PROBLEM_WORDS = re.compile(r"\b(fail(s|ed)?|too (large|small|high|low)|outside|not standardized|exploded|diverg\w*)\b", re.I)


@pytest.fixture(scope="module", params=CASES)
def report(request):
    return run_path(ZOO / f"{request.param}.py", options=RunOptions(seed=0, device="cpu", quick=True))


def test_a_passing_summary_does_not_read_like_a_problem(report):
    for result in report.results:
        if result.status is Status.PASS:
            assert not PROBLEM_WORDS.search(result.summary), (result.id, result.summary)


def test_verdict_columns_agree_with_the_check_status(report):
    for result in report.results:
        for table in result.tables:
            if "verdict" not in table.columns:
                continue
            verdicts = {row[table.columns.index("verdict")] for row in table.rows}
            if result.status in (Status.WARN, Status.FAIL):
                assert result.status.value in verdicts, (result.id, result.status, verdicts)
            if result.status is Status.PASS:
                assert verdicts <= {"pass"}, (result.id, verdicts)


def test_problems_carry_codes_and_passes_none(report):
    for result in report.results:
        if result.status in (Status.WARN, Status.FAIL):
            assert result.codes, (result.id, result.summary)
        if result.status is Status.PASS:
            assert not result.codes, (result.id, result.codes)
