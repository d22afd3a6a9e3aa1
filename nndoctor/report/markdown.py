"""The Markdown report, written to read well on GitHub: the verdict, likely causes, a summary
table, then each section's checks with evidence, fix, per-layer tables and plots; notes and the
checklist items that cannot be automated close it.

Plot links are used as given in ``report.plot_files``: the CLI has already made them relative to
the folder the Markdown file is written to.
"""

from __future__ import annotations

from urllib.parse import quote

from nndoctor.report.fmt import LABEL, counts_text, is_numeric_column, one_line, sections, table_cells
from nndoctor.result import CheckResult, Report, Status, Table, Timeline

ICON = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.SKIP: "⏭️", Status.ERROR: "💥"}
MANUAL_CHECKS = (
    "Look at raw examples and their labels (Karpathy).",
    "Train on a standard corpus (CIFAR-10, ImageNet) to rule out the dataset itself (seed 002).",
    "Start from a pre-trained checkpoint where one exists (seed 002).",
    "Compare with a known result on the same task (Tobin).",
    "Ask whether the task is learnable at all from these inputs (Ivanov).",
)


def _inline(value) -> str:
    """Free text on one line; '<' escaped so that GitHub does not swallow '<module>' as a tag."""
    return one_line(value).replace("<", "&lt;")


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _code(text) -> str:
    """An inline code span that survives backticks inside the text."""
    text = one_line(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _table(table: Table, titled: bool = True) -> list[str]:
    headers, rows = table_cells(table)
    if not headers:
        return []
    lines = [f"**{_inline(table.title)}**", ""] if titled and table.title else []
    align = ["---:" if is_numeric_column(table, i) else "---" for i in range(len(headers))]
    lines += ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _collapsed(summary: str, body: list[str]) -> list[str]:
    """A <details> block; the blank lines let GitHub render the Markdown inside it."""
    return [f"<details><summary>{_inline(summary)}</summary>", "", *body, "</details>", ""]


def _check_section(result: CheckResult, plot_files) -> list[str]:
    lines = [f"### {ICON[result.status]} {LABEL[result.status]} · `{result.id}` — {_inline(result.title)}", ""]
    lines += [_inline(result.summary), ""]
    if result.evidence:
        lines += [f"- {_inline(e)}" for e in result.evidence] + [""]
    if result.fix:
        lines += [f"**Fix:** {_inline(result.fix)}", ""]
    if result.codes:
        lines += ["Finding: " + ", ".join(f"`{code}`" for code in result.codes), ""]
    for table in result.tables:
        # Problems show their tables; passing checks keep them folded away under their title.
        folded = not result.status.is_problem
        body = _table(table, titled=not folded)
        lines += _collapsed(table.title or "table", body) if folded and body else body
    for plot in result.plots:
        path = plot_files.get(plot.name)
        if path:
            lines += [f"![{_inline(plot.title)}]({quote(str(path))})", ""]
    if result.error:
        fence = "````" if "```" in result.error else "```"
        lines += _collapsed("traceback", [fence, result.error.rstrip(), fence, ""])
    return lines


def _timeline(timeline: Timeline, plot_files) -> list[str]:
    lines = ["## Timeline", "", f"{timeline.steps} optimizer steps watched."]
    if timeline.stopped:
        lines[-1] += f" Stopped: {_inline(timeline.stopped)}"
    lines.append("")
    path = plot_files.get(timeline.plot.name)
    if path:
        lines += [f"![{_inline(timeline.plot.title)}]({quote(str(path))})", ""]
    lines += _table(timeline.events) if timeline.events.rows else ["No problem seen.", ""]
    if timeline.lr_changes.rows:
        lines += _table(timeline.lr_changes)
    return lines


def render(report: Report) -> str:
    lines = [
        f"# nndoctor report: {_code(report.target)}",
        "",
        f"**{report.verdict}**: {counts_text(report)} in {report.duration_s:.1f}s. "
        f"Task {_inline(report.task)} ({_inline(report.task_source)}), device {_inline(report.device)}, seed {report.seed}.",
        "",
    ]
    if report.incomplete_reasons:
        lines += ["## Not checked", "", *(f"- {_inline(reason)}" for reason in report.incomplete_reasons), ""]
    if report.causes:
        lines += ["## Likely causes", ""]
        for rank, cause in enumerate(report.causes, 1):
            checks = ", ".join(f"`{c}`" for c in cause.checks)
            lines.append(f"{rank}. **{_inline(cause.title)}** (from {checks}). Fix: {_inline(cause.fix)}")
            if cause.tried_fix:
                lines.append(f"   - Tried: {_inline(cause.tried_fix)}")
        lines.append("")
    lines += ["## Summary", "", "| status | check | section | result |", "|---|---|---|---|"]
    for r in report.results:
        lines.append(f"| {ICON[r.status]} {LABEL[r.status]} | `{r.id}` | {_cell(r.section)} | {_cell(r.summary)} |")
    lines.append("")
    for section, results in sections(report.results):
        lines += [f"## {_inline(section)}", ""]
        for result in results:
            lines += _check_section(result, report.plot_files)
    if report.timeline is not None:
        lines += _timeline(report.timeline, report.plot_files)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {_inline(n)}" for n in report.notes] + [""]
    lines += ["## Not automated (check by hand)", ""] + [f"- [ ] {item}" for item in MANUAL_CHECKS] + [""]
    return "\n".join(lines)
