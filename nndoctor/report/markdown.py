"""The Markdown report: a summary table, likely causes, then each check's evidence and tables."""

from __future__ import annotations

from nndoctor.report.fmt import LABEL, number, sections
from nndoctor.result import Report, Status, Table

ICON = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.SKIP: "⏭️", Status.ERROR: "💥"}


def _cell(value) -> str:
    return number(value).replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    return lines + [""]


def render(report: Report) -> str:
    verdict = "passed" if report.passed else "failed"
    counts = report.counts()
    lines = [
        f"# nndoctor report: `{report.target}`",
        "",
        f"**{verdict.upper()}** — " + ", ".join(f"{counts[s.value]} {s.value}" for s in Status if counts[s.value])
        + f" in {report.duration_s:.1f}s. Task: {report.task} ({report.task_source}); device {report.device}; seed {report.seed}.",
        "",
    ]
    if report.causes:
        lines += ["## Likely causes", ""]
        for rank, cause in enumerate(report.causes, 1):
            lines.append(f"{rank}. **{cause.title}** (from {', '.join(f'`{c}`' for c in cause.checks)}). Fix: {cause.fix}")
            if cause.tried_fix:
                lines.append(f"   - Tried: {cause.tried_fix}")
        lines.append("")
    lines += ["## Summary", "", "| | check | section | result |", "|---|---|---|---|"]
    for r in report.results:
        lines.append(f"| {ICON[r.status]} {LABEL[r.status]} | `{r.id}` | {r.section} | {_cell(r.summary)} |")
    lines.append("")
    for section, results in sections(report.results):
        lines += [f"## {section}", ""]
        for r in results:
            lines += [f"### {ICON[r.status]} `{r.id}` — {r.title}", "", f"**{LABEL[r.status]}**: {r.summary}", ""]
            lines += [f"- {e}" for e in r.evidence]
            if r.evidence:
                lines.append("")
            if r.fix:
                lines += [f"**Fix:** {r.fix}", ""]
            for table in r.tables:
                lines += _table(table)
            for plot in r.plots:
                path = report.plot_files.get(plot.name)
                if path:
                    lines += [f"![{plot.title}]({path})", ""]
            if r.error:
                lines += ["<details><summary>traceback</summary>", "", "```", r.error.rstrip(), "```", "", "</details>", ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    lines += [
        "## Not automated (check by hand)",
        "",
        "- Look at raw examples and their labels (Karpathy).",
        "- Train on a standard corpus (CIFAR-10, ImageNet) to rule out the dataset itself (seed 002).",
        "- Start from a pre-trained checkpoint where one exists (seed 002).",
        "- Compare with a known result on the same task (Tobin); ask whether the task is learnable at all (Ivanov).",
        "",
    ]
    return "\n".join(lines)
