"""What checks produce and reports carry: small frozen values, no rendering and no torch.

A check returns a ``Finding`` (what it measured and its verdict); the runner wraps it with the
catalog's identity (id, title, section) and its timing into a ``CheckResult``; a ``Report`` holds
the results of one run plus what the diagnosis concluded. Renderers receive a finished Report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def is_problem(self) -> bool:
        return self in (Status.WARN, Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class Table:
    """Per-layer or per-class evidence: rendered as a table in Markdown, summarised in the terminal."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Finding:
    """A check's verdict with the measurements behind it.

    ``evidence`` holds short human lines ("rows sum to 1.000 ± 0.000"); ``metrics`` holds the same
    facts as numbers for JSON; ``fix`` overrides the catalog's generic fix advice when the check
    knows something more specific.
    """

    status: Status
    summary: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    fix: str | None = None
    plots: tuple[Any, ...] = ()  # PlotData values, drawn only when the user asks for --plots
    # What was found, as stable codes declared with the check in checks/*.yaml (``codes:``). A
    # check names its own codes by their short key ("probabilities_to_ce"); the runner qualifies
    # them with the check id ("output_head.probabilities_to_ce"). Likely causes match codes only.
    codes: tuple[str, ...] = ()

    @classmethod
    def skip(cls, reason: str, **metrics: Any) -> "Finding":
        return cls(Status.SKIP, reason, metrics=metrics)


@dataclass(frozen=True)
class PlotData:
    """Series for one figure; nndoctor.report.plots draws it. Kept as plain data so checks never
    import matplotlib."""

    name: str  # file stem, e.g. "gradient_flow"
    title: str
    xlabel: str
    ylabel: str
    series: tuple[tuple[str, tuple[Any, ...], tuple[float, ...]], ...]  # (label, xs, ys)
    log_y: bool = False
    log_x: bool = False
    kind: str = "line"  # "line" or "bar"


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    section: str
    status: Status
    summary: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    fix: str | None = None
    duration_s: float = 0.0
    plots: tuple[PlotData, ...] = ()
    error: str | None = None  # traceback text when status is ERROR
    codes: tuple[str, ...] = ()  # qualified finding codes ("lr_range.too_low")

    def has(self, *codes: str) -> bool:
        """Whether the result carries any of these qualified codes."""
        return any(code in self.codes for code in codes)


def fails_run(status: Status, fail_on: Status) -> bool:
    """Whether a result with ``status`` fails a run asked to fail on ``fail_on`` (FAIL, or WARN
    to fail on warnings too): the one rule behind the exit code, the verdict and every report."""
    return status is Status.FAIL or (fail_on is Status.WARN and status is Status.WARN)


@dataclass(frozen=True)
class Cause:
    """A likely root cause, ranked by the diagnosis from the evidence of several checks."""

    title: str
    fix: str
    checks: tuple[str, ...]
    score: float
    evidence: str = ""
    tried_fix: str | None = None  # what --try-fixes observed, if it ran
    key: str = ""  # stable id of the cause (e.g. softmax_before_ce), for JSON and benchmarks


@dataclass(frozen=True)
class Timeline:
    """What a watched job did over time (nndoctor.watch): its events, the learning rate changes
    with the loss level before and after each, and the loss curve with the events marked."""

    steps: int  # optimizer steps watched
    events: Table
    lr_changes: Table
    plot: PlotData
    stopped: str | None = None  # the event that stopped the job, as one line


@dataclass(frozen=True)
class Report:
    target: str
    task: str
    task_source: str
    seed: int
    device: str
    results: tuple[CheckResult, ...]
    duration_s: float = 0.0
    causes: tuple[Cause, ...] = ()
    notes: tuple[str, ...] = ()  # facts about the run worth stating (what was inferred, skipped)
    fail_on: Status = Status.FAIL
    plot_files: Mapping[str, str] = field(default_factory=dict)  # plot name -> path written
    stopped: str | None = None  # why the run ended before every check ran (time budget, Ctrl-C, ...)
    input_problem: str | None = None  # input that turned out unusable part-way, in one paragraph
    allow_errors: bool = False  # checks that crashed do not make the run incomplete
    timeline: Timeline | None = None  # a watched job's events over time
    command: str = "check"  # the nndoctor command that produced it: "check" (a model file) or "run" (a script)

    @property
    def status(self) -> Status:
        statuses = {r.status for r in self.results}
        for status in (Status.FAIL, Status.ERROR, Status.WARN):
            if status in statuses:
                return status
        return Status.PASS

    @property
    def failed(self) -> bool:
        """A check failed (or warned, when the run was asked to fail on warnings)."""
        return any(self.fails(r) for r in self.results)

    @property
    def incomplete_reasons(self) -> tuple[str, ...]:
        """What could not be checked, and why: nothing when every selected check gave a verdict."""
        reasons = []
        if self.input_problem:
            reasons.append("the input could not be used: " + self.input_problem)
        elif self.stopped:
            reasons.append(self.stopped)
        crashed = [r.id for r in self.results if r.status is Status.ERROR]
        if crashed and not self.allow_errors:
            reasons.append(f"{len(crashed)} check(s) crashed: {', '.join(crashed)}")
        return tuple(reasons)

    @property
    def verdict(self) -> str:
        """FAILED when a check failed the run (a finding stands even if other checks could not
        run); else INCOMPLETE when something could not be checked; else PASSED."""
        if self.failed:
            return "FAILED"
        return "INCOMPLETE" if self.incomplete_reasons else "PASSED"

    @property
    def passed(self) -> bool:
        """Every selected check gave a verdict and none failed the run: never True about
        something that could not be checked."""
        return self.verdict == "PASSED"

    def fails(self, result: CheckResult) -> bool:
        """Whether this result makes the run fail (see ``fails_run``)."""
        return fails_run(result.status, self.fail_on)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for r in self.results:
            counts[r.status.value] += 1
        return counts

    def result(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.id == check_id), None)

    def to_json(self) -> str:
        return self.render("json")

    def to_markdown(self) -> str:
        return self.render("markdown")

    def render(self, fmt: str) -> str:
        """The report in a registered format ("json", "markdown", "junit", ...)."""
        import nndoctor.report  # the renderers register themselves on import; the result model imports none

        return nndoctor.report.render(self, fmt)
