"""What several checks share to state their verdicts: one judged aspect (a ``Problem``), the worst
of several statuses, and the per-layer share verdict and plot (dead ReLUs, saturated units).

Checks never import each other; what two of them need alike lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from nndoctor.result import PlotData, Status

SEVERITY = {Status.ERROR: 3, Status.FAIL: 2, Status.WARN: 1, Status.PASS: 0, Status.SKIP: -1}


@dataclass(frozen=True)
class Problem:
    """One judged aspect of a check; a PASS problem states what was found fine. ``code`` is the
    finding code (the check's short key) for a WARN or FAIL."""

    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    fix: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    code: str = ""


def worst_status(statuses: Iterable[Status]) -> Status:
    """The most severe of ``statuses`` (PASS when there are none)."""
    return max(statuses, key=SEVERITY.__getitem__, default=Status.PASS)


def worst(problems: list[Problem]) -> Problem:
    """The first of the most severe problems: callers list them in order of importance."""
    return max(problems, key=lambda p: SEVERITY[p.status])


def codes_of(problems: Iterable[Problem]) -> tuple[str, ...]:
    """The codes of the most severe problems, in order, once each: what the finding's status and
    summary speak of (a warning beside a failure is evidence, not the finding)."""
    problems = list(problems)
    status = worst_status(p.status for p in problems)
    if not status.is_problem:
        return ()
    return tuple(dict.fromkeys(p.code for p in problems if p.status is status and p.code))


def share_status(share: float, thresholds: Mapping[str, Any]) -> Status:
    """A layer's verdict from the share of its units that cannot learn: dead (dead_relu) or
    saturated (saturation), whose catalog entries have the same two threshold keys."""
    if share > thresholds["fail_fraction"]:
        return Status.FAIL
    if share > thresholds["warn_fraction"]:
        return Status.WARN
    return Status.PASS


def share_plot(name: str, title: str, names: list[str], shares: list[float]) -> PlotData:
    return PlotData(
        name=name, title=title, xlabel="layer", ylabel="share of units",
        series=((name.replace("_", " "), tuple(names), tuple(shares)),), kind="bar",
    )
