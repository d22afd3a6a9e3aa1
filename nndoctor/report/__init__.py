"""Renderers: each turns a finished Report into one output format and computes nothing.

Formats are registered by name; a renderer module is imported only when its format is asked for,
so the result model imports no renderer and `nndoctor --help` imports none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nndoctor.result import Report

# format name -> the module whose ``render(report) -> str`` writes it
RENDERERS = {
    "json": "nndoctor.report.json_format",
    "markdown": "nndoctor.report.markdown",
    "junit": "nndoctor.report.junit",
    "github": "nndoctor.report.github",
}


def render(report: "Report", fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(RENDERERS)}")
    return importlib.import_module(RENDERERS[fmt]).render(report)
