"""The three renderers (terminal, Markdown, JSON) and the plot writer, on hand-built Reports.

Renderers compute nothing, so they are tested on Report values directly: layout, the facts each
format must carry, and robustness to whatever text and numbers a check may put in a Finding.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from nndoctor import catalog
from nndoctor.report import json_format, markdown, plots, terminal
from nndoctor.report.fmt import summary_line
from nndoctor.result import Cause, CheckResult, PlotData, Report, Status, Table

# Text that rich would read as markup, emoji codes or links if it were passed as a markup string.
HOSTILE = ("[bold]x[/bold]", "[/]", "[red", "[B, 10]", ":warning:", "[link=http://x]y[/link]")


def result(check_id: str, status: Status = Status.PASS, summary: str = "fine", **fields) -> CheckResult:
    spec = catalog.get_spec(check_id)
    return CheckResult(check_id, spec.title, spec.section, status, summary, **fields)


def report(*results: CheckResult, **fields) -> Report:
    order = catalog.catalog_ids()
    ranked = tuple(sorted(results, key=lambda r: order.index(r.id)))  # as the runner orders them
    fields = {"target": "model.py", "duration_s": 3.21, **fields}
    return Report(task="classification", task_source="declared", seed=0, device="cpu", results=ranked, **fields)


def render_terminal(rep: Report, width: int = 80) -> str:
    # A console with markup and emoji ON: the renderer must not depend on them being off.
    buffer = io.StringIO()
    terminal.render(rep, Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue()


def flat(text: str) -> str:
    return " ".join(text.split())


def layer_table(rows: int = 20, columns: int = 12) -> Table:
    headers = ("layer", "type", *(f"stat_{i}" for i in range(columns - 2)))
    body = tuple(
        (f"blocks.{i}.attention.output_projection.linear", "Linear", *(0.0123 * (i + 1) * 10**j for j in range(columns - 2)))
        for i in range(rows)
    )
    return Table("per-layer statistics", headers, body)


# --- terminal ------------------------------------------------------------------------------


def test_terminal_groups_by_section_and_details_only_problems():
    rep = report(
        result("data_integrity", summary="no NaN/Inf in 512 samples", evidence=("passing detail",)),
        result("initial_loss", Status.FAIL, "initial loss 66.2, expected ln(10) = 2.30 (28.7x)",
               evidence=("layer head.fc: logits std 41.0",), fix="Scale head.fc down by 0.01."),
        result("dead_relu", Status.WARN, "35% of features.2 never fires", tables=(layer_table(3, 4),)),
        result("lr_range", Status.SKIP, "skipped by --quick (a training run)"),
    )
    out = render_terminal(rep)
    lines = [flat(line) for line in out.splitlines()]
    headings = [line for line in lines if line in {"Inputs", "Loss", "Activation functions"}]
    assert headings == ["Inputs", "Loss", "Activation functions"]
    assert "PASS data_integrity no NaN/Inf in 512 samples" in lines
    assert "initial loss 66.2, expected ln(10) = 2.30 (28.7x)" in flat(out)
    assert "· layer head.fc: logits std 41.0" in lines and "fix: Scale head.fc down by 0.01." in lines
    assert "passing detail" not in out  # a passing check shows its figures, not its evidence
    assert "blocks.0.attention.output_projection.linear" in out  # a warning shows its table
    assert "SKIP lr_range skipped by --quick (a training run)" in lines


def test_terminal_shows_markup_characters_literally():
    text = " ".join(HOSTILE)
    rep = report(
        result("initial_loss", Status.FAIL, text, evidence=(text,), fix=text,
               tables=(Table(text, ("[col]", "value"), (("[/]", 1.0),)),)),
        target="[bold]model.py",
        causes=(Cause(text, text, ("initial_loss",), 1.0),),
        notes=(text,),
    )
    out = flat(render_terminal(rep, width=200))
    assert out.count(text) == 7  # summary, evidence, fix, table title, cause title and fix, note
    assert "[bold]model.py" in out and "[col]" in out and "[/]" in out


def test_wide_table_fits_80_columns_and_never_wraps_a_row():
    rep = report(result("gradient_flow", Status.FAIL, "vanishing gradients", tables=(layer_table(),)))
    out = render_terminal(rep)
    assert max(cell_len(line.rstrip()) for line in out.splitlines()) <= 80
    row_lines = [line for line in out.splitlines() if "blocks." in line]
    assert len(row_lines) == terminal.MAX_TABLE_ROWS  # one line per row shown
    assert all("Linear" in line for line in row_lines)
    assert "12 more rows and" in flat(out) and "more columns" in flat(out)


@pytest.mark.parametrize("width", [40, 60, 120])
def test_nothing_overflows_narrow_or_wide_terminals(width):
    long_name = "encoder." + ".".join(f"stage{i}" for i in range(30)) + ".linear1"
    table = Table("deep names", ("layer", "std"), ((long_name, 0.5),))
    rep = report(result("activation_variance", Status.WARN, "x " * 80, evidence=("y" * 300,), tables=(table,)))
    out = render_terminal(rep, width=width)
    assert max(cell_len(line.rstrip()) for line in out.splitlines()) <= width
    table_line = next(line for line in out.splitlines() if "encoder." in line)
    assert "…" in table_line and "linear1" in table_line  # shortened in the middle: root and leaf kept


def test_summary_line():
    rep = report(
        *(result(i, Status.FAIL) for i in ("initial_loss", "dead_relu")),
        result("numerics", Status.WARN),
        *(result(i) for i in catalog.catalog_ids()[:10]),
        duration_s=3.2,
    )
    assert summary_line(rep) == "nndoctor: FAILED — 2 fail, 1 warn, 10 pass (3.2s)"
    warned = report(result("initial_loss", Status.WARN), result("numerics", Status.ERROR), duration_s=1.0)
    assert summary_line(warned) == "nndoctor: INCOMPLETE — 1 error, 1 warn (1.0s); not checked: 1 check(s) crashed: numerics"
    strict = report(result("initial_loss", Status.WARN), fail_on=Status.WARN, duration_s=1.0)
    assert summary_line(strict).startswith("nndoctor: FAILED — 1 warn")


# --- any renderer, odd content -------------------------------------------------------------


def odd_report() -> Report:
    """Everything a careless check could put in a Finding."""
    ragged = Table("ragged | table", ("a|b", "n"), ((1,), (float("nan"), math.inf, "extra"), (None, True)))
    empty = Table("", (), ())
    metrics = {"nan": float("nan"), "inf": -math.inf, "array": np.arange(3, dtype=np.float32),
               "scalar": np.float32(0.5), "nested": {"k": [1, (2, float("nan"))]}, 3: "int key", "none": None}
    return report(
        result("initial_loss", Status.FAIL, "line one\nline two " + " ".join(HOSTILE), metrics=metrics,
               evidence=("", "a" * 500, "<module> `code` *star*"), tables=(ragged, empty), fix="fix\nit"),
        result("numerics", Status.ERROR, "the check crashed: ValueError: [x]", error="Traceback\n```\nValueError"),
        result("dead_relu", Status.PASS, "", tables=(layer_table(2, 3),)),
    )


@pytest.mark.parametrize("render", [render_terminal, markdown.render, json_format.render], ids=["terminal", "markdown", "json"])
def test_renderers_survive_odd_content(render):
    assert "initial_loss" in render(odd_report())


def test_json_is_valid_and_follows_schema_1():
    def no_nan(constant):
        raise AssertionError(f"{constant} is not valid JSON")

    data = json.loads(json_format.render(odd_report()), parse_constant=no_nan)
    assert data["schema_version"] == 1
    assert data["status"] == "fail" and data["passed"] is False and data["fail_on"] == "fail"
    assert data["counts"] == {"pass": 1, "warn": 0, "fail": 1, "skip": 0, "error": 1}
    checks = {c["id"]: c for c in data["checks"]}
    for check in checks.values():
        assert {"id", "title", "section", "status", "summary", "metrics", "evidence", "fix", "tables", "error"} <= set(check)
        assert check["status"] in {s.value for s in Status}
    metrics = checks["initial_loss"]["metrics"]
    assert metrics["nan"] is None and metrics["inf"] is None
    assert metrics["array"] == [0.0, 1.0, 2.0] and metrics["scalar"] == 0.5
    assert metrics["nested"] == {"k": [1, [2, None]]} and metrics["3"] == "int key"
    assert checks["numerics"]["error"].startswith("Traceback") and checks["dead_relu"]["error"] is None


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_reads_as_a_github_report():
    rep = report(
        result("initial_loss", Status.FAIL, "initial loss 66.2, expected ln(10) = 2.30",
               evidence=("logits std 41.0 at head.fc",), fix="Scale head.fc down.", tables=(layer_table(2, 3),)),
        result("dead_relu", Status.PASS, "no dead units", tables=(layer_table(2, 3),)),
        result("numerics", Status.ERROR, "the check crashed: ValueError: bad", error="Traceback\nValueError: bad"),
        causes=(Cause("Final layer too large", "Scale it down.", ("initial_loss",), 0.9),),
        notes=("Task: classification (declared).",),
    )
    text = markdown.render(rep)
    assert text.startswith("# nndoctor report: `model.py`")
    assert "**FAILED**: 1 fail, 1 error, 1 pass in 3.2s." in text
    assert "1. **Final layer too large** (from `initial_loss`). Fix: Scale it down." in text
    summary_rows = [line for line in text.splitlines() if line.startswith("| ") and "` |" in line]
    assert [row.split("`")[1] for row in summary_rows] == ["initial_loss", "dead_relu", "numerics"]
    assert text.index("## Loss") < text.index("## Activation functions") < text.index("## Other tips")
    assert "- logits std 41.0 at head.fc" in text and "**Fix:** Scale head.fc down." in text
    assert "|---|---|---:|" in text  # numbers right-aligned
    failing, passing = text.split("## Activation functions")
    assert "<details>" not in failing.split("## Other tips")[0]  # a problem's table is open ...
    assert "<details><summary>per-layer statistics</summary>" in passing  # ... a pass's is folded
    assert "<details><summary>traceback</summary>" in text
    assert "## Notes\n\n- Task: classification (declared)." in text
    assert "- [ ] Look at raw examples and their labels" in text


def test_markdown_escapes_what_would_break_it():
    text = markdown.render(odd_report())
    assert "line one line two" in text  # a line break would end the paragraph or the list item
    assert "ragged \\| table" not in text and "| a\\|b | n |" in text  # pipes escaped inside tables
    assert "&lt;module>" in text
    assert "````\nTraceback\n```\nValueError\n````" in text  # a fence inside the traceback


def test_markdown_links_plots_as_given():
    curve = PlotData("lr range", "LR range test", "lr", "loss", (("loss", (1e-5, 1e-3), (2.0, 1.0)),))
    rep = report(result("lr_range", plots=(curve,)), plot_files={"lr range": "../my plots/lr_range.png"})
    assert "![LR range test](../my%20plots/lr_range.png)" in markdown.render(rep)


# --- plots ---------------------------------------------------------------------------------


def test_plots_are_drawn_and_a_broken_plot_becomes_a_note(tmp_path):
    good = PlotData("gradient_flow", "Gradient norm per layer", "layer", "norm",
                    (("grad", ("fc1", "fc2"), (1e-3, 1e-1)),), log_y=True, kind="bar")
    broken = PlotData("broken/plot", "Mismatched series", "x", "y", (("y", (1, 2, 3), (1.0,)),))
    rep = plots.write(report(result("gradient_flow", plots=(good, broken))), tmp_path / "plots")
    assert (tmp_path / "plots" / "gradient_flow.png").stat().st_size > 1000
    assert set(rep.plot_files) == {"gradient_flow"}
    assert any("broken/plot" in note for note in rep.notes)
    linked = plots.relative_to(rep, tmp_path / "reports")
    assert linked.plot_files == {"gradient_flow": "../plots/gradient_flow.png"}
