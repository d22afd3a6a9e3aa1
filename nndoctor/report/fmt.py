"""Formatting helpers shared by the renderers: numbers, status labels, counts, table cells.

Everything here turns values into strings and never raises on odd content, because a report must
render whatever a check put in its Finding.
"""

from __future__ import annotations

import math
from typing import Any

from nndoctor.result import Report, Status, Table

LABEL = {
    Status.PASS: "PASS",
    Status.WARN: "WARN",
    Status.FAIL: "FAIL",
    Status.SKIP: "SKIP",
    Status.ERROR: "ERROR",
}
# Counts are listed worst first: "2 fail, 1 warn, 10 pass".
SEVERITY_ORDER = (Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.SKIP)


def number(value: Any) -> str:
    """Compact, readable numbers for tables: 3 significant digits, scientific when tiny/huge.
    Anything that is not a number is shown as its text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
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


def one_line(value: Any) -> str:
    """Text for a single line of output: line breaks folded into spaces."""
    return " ".join(str(value).split())


def table_cells(table: Table) -> tuple[list[str], list[list[str]]]:
    """Headers and rows as strings, all of the same length (ragged rows padded with blanks)."""
    rows = [[one_line(number(v)) for v in row] for row in table.rows]
    width = max([len(table.columns), *(len(row) for row in rows)])
    headers = [one_line(c) for c in table.columns] + [""] * (width - len(table.columns))
    return headers, [row + [""] * (width - len(row)) for row in rows]


def is_numeric_column(table: Table, index: int) -> bool:
    """Columns holding only numbers are right-aligned."""
    values = [row[index] for row in table.rows if index < len(row) and row[index] is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def counts_text(report: Report) -> str:
    counts = report.counts()
    parts = [f"{counts[s.value]} {s.value}" for s in SEVERITY_ORDER if counts[s.value]]
    return ", ".join(parts) or "no check ran"


def summary_line(report: Report) -> str:
    """The one line a CI log needs: 'nndoctor: FAILED — 2 fail, 1 warn, 10 pass (3.2s)', and for
    an incomplete run what could not be checked."""
    line = f"nndoctor: {report.verdict} — {counts_text(report)} ({report.duration_s:.1f}s)"
    reasons = report.incomplete_reasons
    if reasons and not report.input_problem:
        line += "; not checked: " + "; ".join(reasons)
    elif report.input_problem:
        line += "; the input could not be used (see above)"
    return line


def sections(results):
    """Results grouped by section, in catalog order: [(section, [results])]."""
    grouped: dict[str, list] = {}
    for result in results:
        grouped.setdefault(result.section, []).append(result)
    return list(grouped.items())
