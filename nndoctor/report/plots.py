"""--plots DIR: draws the PlotData that checks attached to their results as PNG files.

matplotlib is imported here only, and only when plots were asked for.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from nndoctor.errors import InputError
from nndoctor.result import PlotData, Report


def _draw(plot: PlotData, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        for label, xs, ys in plot.series:
            if plot.kind == "bar":
                positions = range(len(xs))
                ax.bar(positions, ys, label=label, alpha=0.7)
                ax.set_xticks(list(positions), [str(x) for x in xs], rotation=60, ha="right", fontsize=7)
            else:
                ax.plot(xs, ys, label=label, marker="o" if len(xs) < 40 else None, markersize=3)
        ax.set_title(plot.title)
        ax.set_xlabel(plot.xlabel)
        ax.set_ylabel(plot.ylabel)
        if plot.log_y:
            ax.set_yscale("log")
        if plot.log_x:
            ax.set_xscale("log")
        if len(plot.series) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def _file_stem(name: str) -> str:
    """A plot name made safe as a file name on every platform."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "plot"


def write(report: Report, folder: Path) -> Report:
    """Draw every plot of the report into ``folder``; return the report with their paths.

    A plot that cannot be drawn becomes a note: the report itself matters more than a figure."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the plots folder {folder}: {exc.strerror}. Choose a writable path.") from None
    files = dict(report.plot_files)
    notes = list(report.notes)
    plots = [(result.id, plot) for result in report.results for plot in result.plots]
    if report.timeline is not None:
        plots.append(("timeline", report.timeline.plot))
    for owner, plot in plots:
        path = folder / f"{_file_stem(plot.name)}.png"
        try:
            _draw(plot, path)
        except Exception as exc:  # malformed series or an unwritable file: keep going
            notes.append(f"Could not draw the plot {plot.name!r} of {owner}: {type(exc).__name__}: {exc}")
            continue
        files[plot.name] = str(path)
    return replace(report, plot_files=files, notes=tuple(notes))


def relative_to(report: Report, folder: Path) -> Report:
    """The report with its plot paths relative to ``folder``: the links a Markdown file written
    there needs (as forward-slash paths, which Markdown viewers expect on every platform)."""
    start = os.path.abspath(folder)
    files = {}
    for name, path in report.plot_files.items():
        try:
            files[name] = Path(os.path.relpath(os.path.abspath(path), start)).as_posix()
        except ValueError:  # another drive on Windows: no relative path exists
            files[name] = Path(os.path.abspath(path)).as_posix()
    return replace(report, plot_files=files)
