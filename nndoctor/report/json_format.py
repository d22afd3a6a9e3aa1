"""The JSON report (schema_version 1), for CI and scripts.

Every key is always present (null when empty) so that consumers need no existence checks.
Non-finite floats become null so the file is valid JSON; numpy/torch values become plain numbers
or lists; anything else JSON cannot hold becomes its text.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from nndoctor import __version__
from nndoctor.result import CheckResult, Report

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if callable(getattr(value, "tolist", None)):  # numpy / torch scalars and arrays
        return _clean(value.tolist())
    return value


def _check(r: CheckResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "title": r.title,
        "section": r.section,
        "status": r.status.value,
        "codes": list(r.codes),
        "summary": r.summary,
        "metrics": r.metrics,
        "evidence": list(r.evidence),
        "fix": r.fix,
        "tables": [{"title": t.title, "columns": list(t.columns), "rows": [list(row) for row in t.rows]} for t in r.tables],
        "plots": [p.name for p in r.plots],
        "duration_s": round(r.duration_s, 3),
        "error": r.error,
    }


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nndoctor", "version": __version__},
        "target": report.target,
        "status": report.status.value,
        "passed": report.passed,
        "verdict": report.verdict,
        "incomplete": list(report.incomplete_reasons),
        "fail_on": report.fail_on.value,
        "task": report.task,
        "task_source": report.task_source,
        "seed": report.seed,
        "device": report.device,
        "duration_s": round(report.duration_s, 3),
        "counts": report.counts(),
        "notes": list(report.notes),
        "likely_causes": [
            {"key": c.key, "title": c.title, "fix": c.fix, "checks": list(c.checks), "score": c.score,
             "evidence": c.evidence, "tried_fix": c.tried_fix}
            for c in report.causes
        ],
        "checks": [_check(r) for r in report.results],
        "plots": dict(report.plot_files),  # plot name -> file written by --plots
        "timeline": _timeline(report),
    }


def _timeline(report: Report) -> dict[str, Any] | None:
    """A watched job's events and learning-rate changes; null for a pre-flight report."""
    timeline = report.timeline
    if timeline is None:
        return None
    rows = lambda table: [dict(zip(table.columns, row)) for row in table.rows]
    return {"steps": timeline.steps, "stopped": timeline.stopped, "events": rows(timeline.events),
            "lr_changes": rows(timeline.lr_changes)}


def render(report: Report) -> str:
    return json.dumps(_clean(as_dict(report)), indent=2, allow_nan=False, ensure_ascii=False, default=str) + "\n"
