"""Formatting helpers shared by the renderers (numbers and status labels only)."""

from __future__ import annotations

import math
from typing import Any

from nndoctor.result import Status

LABEL = {
    Status.PASS: "PASS",
    Status.WARN: "WARN",
    Status.FAIL: "FAIL",
    Status.SKIP: "SKIP",
    Status.ERROR: "ERROR",
}


def number(value: Any) -> str:
    """Compact, readable numbers for tables: 3 significant digits, scientific when tiny/huge."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e5:
        return f"{value:.2e}"
    return f"{value:.3g}"


def sections(results):
    """Results grouped by section, in catalog order: [(section, [results])]."""
    grouped: dict[str, list] = {}
    for result in results:
        grouped.setdefault(result.section, []).append(result)
    return list(grouped.items())
