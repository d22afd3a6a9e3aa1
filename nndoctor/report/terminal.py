"""The terminal report (rich): grouped by the article's sections; evidence and fix for problems
(for every check with --verbose, which also times each check).

Also renders the catalog for `nndoctor list` / `nndoctor explain`, what `nndoctor init` wrote, the
one-line summary, the --quiet problem lines and input errors on stderr, and the progress display
that runs on stderr while checks execute (the CLI enables it only for a person at a terminal, so
CI logs stay clean).

Every piece of text a check or the user supplied goes through ``Text``, never through a markup
string, so brackets such as "[B, 10]" are shown literally and can never break the rendering.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Iterator

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.table import Table as RichTable
from rich.text import Text

from nndoctor.catalog import CheckSpec, load_catalog
from nndoctor.report.fmt import LABEL, is_numeric_column, one_line, sections, summary_line, table_cells
from nndoctor.result import CheckResult, Report, Status, Table

STYLE = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
    Status.ERROR: "bold magenta",
}
TIERS = {"S": "static", "D": "data scan", "F": "forward/backward pass", "T": "short training run"}
LABEL_WIDTH = max(len(label) for label in LABEL.values())
INDENT = LABEL_WIDTH + 2  # evidence, tables and fixes sit under the check id
MAX_TABLE_ROWS = 8  # the terminal shows the first rows; the Markdown and JSON reports have them all
COLUMN_GAP = 2
MIN_COLUMN = 12  # a text column is shortened down to this width before columns are dropped


PIPE_WIDTH = 160  # lines wrap here when the output is not a terminal (a CI log, a file) and COLUMNS is unset


class _Unpadded(io.TextIOBase):
    """A stream that drops the spaces rich pads table cells and lines with: piped output is read
    by people in CI logs and by grep, where trailing blanks are noise."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending.rstrip())
            self.pending = ""
        self.stream.flush()


def _console(console: Console | None, stderr: bool = False) -> Console:
    """The given console, or one on stdout/stderr: the terminal's width on a terminal; elsewhere
    COLUMNS or a wide line, without padding."""
    if console is not None:
        return console
    stream = sys.stderr if stderr else sys.stdout
    options = dict(highlight=False, soft_wrap=False, markup=False, emoji=False)
    if stream.isatty():
        return Console(stderr=stderr, **options)
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH
    return Console(file=_Unpadded(stream), width=width, **options)


def _indented(out: Console, renderable: RenderableType, indent: int = INDENT) -> None:
    """Print with a left margin that wrapped lines keep too."""
    out.print(Padding(renderable, (0, 0, 0, indent), expand=False))


def _labelled(rows: list[tuple[str, Text]], label_style: str = "bold") -> RichTable:
    """Two columns, a label and text that wraps under itself (a hanging indent)."""
    grid = RichTable.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for label, text in rows:
        grid.add_row(Text(label, style=label_style), text)
    return grid


def render(report: Report, console: Console | None = None, verbose: bool = False) -> None:
    """The full report. ``verbose`` details passing checks too (evidence, tables) and times each check."""
    out = _console(console)
    out.print(Text.assemble((f"nndoctor {report.command} ", "bold"), str(report.target)))
    out.print(Text(f"task {report.task} ({report.task_source}) · device {report.device} · seed {report.seed}", style="dim"))
    _print_causes(out, report)
    id_width = max((len(r.id) for r in report.results), default=0)
    for section, results in sections(report.results):
        out.print()
        out.print(Text(section, style="bold underline"))
        for result in results:
            _print_result(out, result, id_width, details=verbose or result.status.is_problem, timed=verbose)
    if report.notes or report.plot_files:
        out.print()
    for note in report.notes:
        out.print(_labelled([("note", Text(one_line(note), style="dim"))]))
    for name, path in report.plot_files.items():
        out.print(_labelled([("plot", Text(f"{name}: {path}", style="dim"))]))


def _print_causes(out: Console, report: Report) -> None:
    if not report.causes:
        return
    out.print()
    out.print(Text("Likely causes", style="bold underline"))
    for rank, cause in enumerate(report.causes, 1):
        title = Text.assemble((one_line(cause.title), "bold"), (f"  ({', '.join(cause.checks)})", "dim"))
        out.print(_labelled([(f"{rank:>2}.", title)]))
        details = [("fix:", Text(one_line(cause.fix), style="cyan"))]
        if cause.tried_fix:
            details.append(("tried:", Text(one_line(cause.tried_fix))))
        _indented(out, _labelled(details), 4)


def _print_result(out: Console, result: CheckResult, id_width: int, details: bool, timed: bool = False) -> None:
    """The check's status line; with ``details`` its evidence, tables and fix below it."""
    line = RichTable.grid(padding=(0, 1))
    line.add_column(no_wrap=True, width=LABEL_WIDTH)
    line.add_column(no_wrap=True, width=id_width)
    line.add_column(overflow="fold")  # a long summary wraps under itself, not under the label
    cells = [
        Text(LABEL[result.status], style=STYLE[result.status]),
        Text(result.id, style="bold"),
        Text(one_line(result.summary), style="dim" if result.status is Status.SKIP else ""),
    ]
    if timed:
        line.add_column(no_wrap=True, justify="right")
        cells.append(Text(f"{result.duration_s:.2f}s", style="dim"))
    line.add_row(*cells)
    _indented(out, line, 1)
    if not details:
        return
    if result.evidence:
        _indented(out, _labelled([("·", Text(one_line(e), style="dim")) for e in result.evidence], "dim"))
    for table in result.tables:
        _print_table(out, table)
    if result.fix:
        _indented(out, _labelled([("fix:", Text(one_line(result.fix), style="cyan"))], "bold cyan"))
    if result.status is Status.ERROR:
        _indented(out, Text("rerun with --debug for the traceback", style="dim"))


def _shorten(text: str, width: int) -> str:
    """Cut the middle out of a long cell: a layer path keeps its root and its leaf."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1  # characters around the ellipsis
    head = keep // 3
    return text[:head] + "…" + text[len(text) - (keep - head):]


def _fit_columns(headers: list[str], rows: list[list[str]], available: int) -> list[tuple[int, int]]:
    """(column index, width) of the columns that fit side by side in ``available`` cells.

    Long text columns are shortened to at most half the room (never below MIN_COLUMN); columns
    that still do not fit are left out from the right, so no row ever wraps onto a second line.
    """
    natural = [max([cell_len(h), *(cell_len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    cap = max(MIN_COLUMN, available // 2)
    widths = [min(w, cap) for w in natural]
    widths[0] = max(1, min(widths[0], available))
    shown: list[int] = []
    used = 0
    for index, width in enumerate(widths):
        needed = width + (COLUMN_GAP if shown else 0)
        if shown and used + needed > available:
            break
        shown.append(index)
        used += needed
    spare = available - used
    for index in shown:  # give the room left back to the columns that were shortened
        extra = min(spare, natural[index] - widths[index])
        widths[index] += extra
        spare -= extra
    return [(index, widths[index]) for index in shown]


def _print_table(out: Console, table: Table) -> None:
    headers, rows = table_cells(table)
    if not headers:
        return
    visible_rows = rows[:MAX_TABLE_ROWS]
    columns = _fit_columns(headers, visible_rows, out.width - INDENT)
    rich_table = RichTable(box=None, pad_edge=False, padding=(0, COLUMN_GAP // 2), show_edge=False, header_style="bold")
    for index, width in columns:
        justify = "right" if is_numeric_column(table, index) else "left"
        header = Text(_shorten(headers[index], width))
        rich_table.add_column(header, width=width, no_wrap=True, overflow="ellipsis", justify=justify)
    for row in visible_rows:
        rich_table.add_row(*(Text(_shorten(row[index], width)) for index, width in columns))
    if table.title:
        _indented(out, Text(one_line(table.title), style="dim"))
    _indented(out, rich_table)
    hidden = headers[len(columns):]
    left_out = []
    if len(rows) > MAX_TABLE_ROWS:
        left_out.append(f"{len(rows) - MAX_TABLE_ROWS} more rows")
    if hidden:
        left_out.append(f"{len(hidden)} more columns ({', '.join(h for h in hidden if h) or 'unnamed'})")
    if left_out:
        _indented(out, Text(f"… {' and '.join(left_out)} in the --report / --json output", style="dim"))


def print_problems(report: Report, console: Console | None = None) -> None:
    """One line per check that fails the run or crashed, on stderr: what --quiet still shows."""
    out = _console(console, stderr=True)
    problems = [r for r in report.results if report.fails(r) or r.status is Status.ERROR]
    id_width = max((len(r.id) for r in problems), default=0)
    for result in problems:
        _print_result(out, result, id_width, details=False)


def print_summary(report: Report, console: Console | None = None) -> None:
    """The one-line verdict, on stderr so that stdout can carry a report (or JSON) alone."""
    out = _console(console, stderr=True)
    style = {"PASSED": "bold green", "FAILED": "bold red"}.get(report.verdict, "bold yellow")
    out.print(Text(summary_line(report), style=style))


def print_wrote(path: Path, what: str, console: Console | None = None) -> None:
    """One line on stderr per file written (--report, --json, --junit), as --plots does."""
    _console(console, stderr=True).print(Text.assemble(("nndoctor: wrote ", "dim"), str(path), (f" ({what})", "dim")))


def print_input_error(message: str, console: Console | None = None) -> None:
    """Why the input cannot be used (exit code 2): one paragraph on stderr, no traceback."""
    out = _console(console, stderr=True)
    out.print(Text.assemble(("nndoctor: ", "bold red"), message))


def print_init_done(written: list[Path], folder: Path, console: Console | None = None) -> None:
    """What `nndoctor init` wrote and what to do next."""
    out = _console(console)
    for path in written:
        out.print(Text.assemble(("wrote ", "bold green"), str(path)))
    out.print(Text(
        "Replace build_model() and build_dataset() in model.py with yours (the comments there say what "
        "nndoctor expects); nndoctor.yaml lists every setting.", style="dim",
    ))
    out.print(Text.assemble(("next: ", "bold"), f"nndoctor check {folder}"))


def render_catalog(console: Console | None = None) -> None:
    out = _console(console)
    specs = load_catalog()
    id_width = max(len(spec.id) for spec in specs)
    tier_width = max(len(spec.tier) for spec in specs)
    for section, section_specs in sections(specs):
        out.print(Text(section, style="bold underline"))
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, width=id_width, style="bold")
        grid.add_column(no_wrap=True, width=tier_width)
        grid.add_column(overflow="fold")
        for spec in section_specs:
            grid.add_row(Text(spec.id), Text(spec.tier, style="dim"), Text(one_line(spec.catches)))
        _indented(out, grid, 2)
        out.print()
    legend = ", ".join(f"{tier} {what}" for tier, what in TIERS.items())
    out.print(Text(f"{len(specs)} checks. Tiers: {legend}. `nndoctor explain ID` for details.", style="dim"))


def _tier_text(tier: str) -> str:
    return " + ".join(TIERS.get(part, part) for part in tier.split("/"))


def render_spec(spec: CheckSpec, console: Console | None = None) -> None:
    out = _console(console)
    out.print(Text.assemble((spec.id, "bold"), f" — {spec.title}"))
    out.print(Text(f"section {spec.section} · tier {spec.tier} ({_tier_text(spec.tier)})", style="dim"))
    out.print()
    rows = [("Catches", Text(one_line(spec.catches))), ("Why", Text(spec.why)), ("Fix", Text(spec.fix))]
    if spec.sources:
        rows.append(("Sources", Text("; ".join(map(str, spec.sources)))))
    out.print(_labelled(rows))
    out.print()
    if spec.thresholds:
        out.print(Text(f"Thresholds (override in nndoctor.yaml under checks: thresholds: {spec.id}:)", style="bold"))
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in spec.thresholds.items():
            grid.add_row(Text(str(key)), Text(str(value)))
        _indented(out, grid, 2)
    else:
        out.print(Text("No thresholds.", style="dim"))
    if spec.codes:
        out.print(Text("Finding codes (in --json reports, per check: \"codes\")", style="bold"))
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for code, title in spec.codes.items():
            grid.add_row(Text(code), Text(title))
        _indented(out, grid, 2)
    out.print(Text(f"Run it alone: nndoctor check model.py --only {spec.id}", style="dim"))


@contextlib.contextmanager
def progress(enabled: bool, console: Console | None = None) -> Iterator:
    """Yields the runner's on_start callback ('check X is starting'), or None when disabled.

    Enabled, a live line on stderr names the running check and how long it has been running
    (the training-based checks take seconds to minutes); it is transient: it disappears when the
    run ends, so the terminal keeps only the report and the summary line.
    """
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    live = Progress(
        SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
        console=_console(console, stderr=True), transient=True,
    )
    task = live.add_task("loading the model and data")
    started = 0

    def on_start(spec: CheckSpec) -> None:
        nonlocal started
        started += 1
        live.reset(task, description=f"check {started} · {spec.id}: {one_line(spec.title)}")

    with live:
        yield on_start
