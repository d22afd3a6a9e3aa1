"""--plots DIR: draws the PlotData that checks attached to their results as PNG files.

matplotlib is imported here only, and only when plots were asked for.
"""

from __future__ import annotations

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


def write(report: Report, folder: Path) -> Report:
    """Draw every plot of the report into ``folder``; return the report with their paths."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the plots folder {folder}: {exc.strerror}. Choose a writable path.") from None
    files = dict(report.plot_files)
    for result in report.results:
        for plot in result.plots:
            path = folder / f"{plot.name}.png"
            _draw(plot, path)
            files[plot.name] = str(path)
    return replace(report, plot_files=files)
