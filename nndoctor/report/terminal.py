"""The terminal report (rich): grouped by the article's sections; evidence and fix for problems.

Also renders the catalog for `nndoctor list` / `nndoctor explain`, and the progress display that
runs on stderr while checks execute (only when stderr is a terminal, so CI logs stay clean).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from nndoctor.catalog import CheckSpec, load_catalog
from nndoctor.report.fmt import LABEL, number, sections
from nndoctor.result import Report, Status

STYLE = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
    Status.ERROR: "bold magenta",
}
MAX_TABLE_ROWS = 8  # the terminal shows the worst rows; the Markdown report has them all


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False, soft_wrap=False)


def render(report: Report, console: Console | None = None) -> None:
    out = _console(console)
    out.print(Text.assemble(("nndoctor", "bold"), f" check {report.target}"))
    out.print(Text(f"task {report.task} ({report.task_source}) | device {report.device} | seed {report.seed}", style="dim"))
    if report.causes:
        out.print()
        out.print(Text("Likely causes", style="bold underline"))
        for rank, cause in enumerate(report.causes, 1):
            out.print(Text.assemble(f" {rank}. ", (cause.title, "bold"), (f"  [{', '.join(cause.checks)}]", "dim")))
            out.print(Text(f"    fix: {cause.fix}"))
            if cause.tried_fix:
                out.print(Text(f"    tried: {cause.tried_fix}", style="cyan"))
    for section, results in sections(report.results):
        out.print()
        out.print(Text(section, style="bold underline"))
        for result in results:
            line = Text.assemble(
                (f" {LABEL[result.status]:<5} ", STYLE[result.status]),
                (f"{result.id:<21}", "bold"),
                f" {result.summary}",
            )
            out.print(line)
            if result.status in (Status.WARN, Status.FAIL, Status.ERROR):
                for evidence in result.evidence:
                    out.print(Text(f"         · {evidence}", style="dim"))
                for table in result.tables:
                    _print_table(out, table)
                if result.fix:
                    out.print(Text(f"         fix: {result.fix}", style="cyan"))
                if result.status is Status.ERROR:
                    out.print(Text("         (rerun with --debug for the traceback)", style="dim"))
    out.print()
    counts = report.counts()
    summary = ", ".join(f"{counts[s.value]} {s.value}" for s in Status if counts[s.value])
    verdict = ("PASSED", "bold green") if report.passed else ("FAILED", "bold red")
    out.print(Text.assemble(verdict, f"  {summary} in {report.duration_s:.1f}s"))
    for note in report.notes:
        out.print(Text(f"note: {note}", style="dim"))
    for name, path in report.plot_files.items():
        out.print(Text(f"plot {name}: {path}", style="dim"))


def _print_table(out: Console, table) -> None:
    rich_table = RichTable(title=table.title, title_justify="left", title_style="dim", show_edge=False, pad_edge=False, box=None)
    for column in table.columns:
        rich_table.add_column(column, style="dim")
    for row in table.rows[:MAX_TABLE_ROWS]:
        rich_table.add_row(*(number(v) for v in row))
    if len(table.rows) > MAX_TABLE_ROWS:
        rich_table.add_row(f"... {len(table.rows) - MAX_TABLE_ROWS} more rows in the Markdown report", *([""] * (len(table.columns) - 1)))
    with contextlib.suppress(Exception):
        from rich.padding import Padding

        out.print(Padding(rich_table, (0, 0, 0, 9)))


def render_catalog(console: Console | None = None) -> None:
    out = _console(console)
    table = RichTable(show_lines=False, box=None, pad_edge=False)
    table.add_column("id", style="bold")
    table.add_column("section")
    table.add_column("tier", style="dim")
    table.add_column("catches")
    for spec in load_catalog():
        table.add_row(spec.id, spec.section, spec.tier, spec.catches)
    out.print(table)
    out.print(Text("Tiers: S static, D data scan, F forward/backward, T short training. `nndoctor explain ID` for details.", style="dim"))


def render_spec(spec: CheckSpec, console: Console | None = None) -> None:
    out = _console(console)
    out.print(Text.assemble((spec.id, "bold"), f"  {spec.title}  ", (f"[{spec.section}, tier {spec.tier}]", "dim")))
    out.print()
    out.print(Text("Why: ", style="bold") + Text(spec.why))
    out.print(Text("Fix: ", style="bold") + Text(spec.fix))
    if spec.thresholds:
        out.print(Text("Thresholds (override in nndoctor.yaml under checks.thresholds." + spec.id + "):", style="bold"))
        for key, value in spec.thresholds.items():
            out.print(f"  {key}: {value}")
    if spec.sources:
        out.print(Text("Sources: ", style="bold") + Text("; ".join(spec.sources)))


@contextlib.contextmanager
def progress(enabled: bool) -> Iterator:
    """Yields a callback for 'check X is starting'; shows a spinner on stderr when enabled."""
    if not enabled:
        yield None
        return
    from rich.status import Status as Spinner

    spinner = Spinner("loading the model and data", console=Console(stderr=True))
    spinner.start()
    try:
        yield lambda spec: spinner.update(f"running {spec.id}: {spec.title}")
    finally:
        spinner.stop()
