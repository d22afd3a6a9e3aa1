"""The JSON report (schema_version 1). Non-finite floats become null so the file is valid JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from nndoctor import __version__
from nndoctor.result import Report

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nndoctor", "version": __version__},
        "target": report.target,
        "status": report.status.value,
        "passed": report.passed,
        "task": report.task,
        "task_source": report.task_source,
        "seed": report.seed,
        "device": report.device,
        "duration_s": round(report.duration_s, 3),
        "counts": report.counts(),
        "notes": list(report.notes),
        "likely_causes": [
            {"title": c.title, "fix": c.fix, "checks": list(c.checks), "score": c.score,
             "evidence": c.evidence, "tried_fix": c.tried_fix}
            for c in report.causes
        ],
        "checks": [
            {
                "id": r.id,
                "title": r.title,
                "section": r.section,
                "status": r.status.value,
                "summary": r.summary,
                "metrics": r.metrics,
                "evidence": list(r.evidence),
                "fix": r.fix,
                "tables": [{"title": t.title, "columns": list(t.columns), "rows": [list(row) for row in t.rows]} for t in r.tables],
                "duration_s": round(r.duration_s, 3),
                **({"error": r.error} if r.error else {}),
            }
            for r in report.results
        ],
        "plots": dict(report.plot_files),
    }


def render(report: Report) -> str:
    return json.dumps(_clean(as_dict(report)), indent=2, allow_nan=False) + "\n"
