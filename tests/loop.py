"""Helpers for the loop checks' tests: run a script under `nndoctor run` and get one check's result."""

from __future__ import annotations

from pathlib import Path

from nndoctor import engine
from nndoctor.options import RunOptions
from nndoctor.result import CheckResult

SCRIPTS = Path(__file__).resolve().parent / "scripts"
MLP = SCRIPTS / "train_mlp.py"


def run_loop_check(check_id: str, *args: str, script: Path = MLP, steps: int = 60) -> CheckResult:
    report = engine.run_script(script, list(args), steps=steps, options=RunOptions(only=tuple([check_id]), device="cpu"))
    result = report.result(check_id)
    assert result is not None and result.error is None, result
    return result
