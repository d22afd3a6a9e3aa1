"""How one run is asked for: the switches the CLI, the Python API and the benchmarks pass to the
engine, as one frozen value instead of a row of keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    only: tuple[str, ...] = ()  # check ids to run (empty: all)
    skip: tuple[str, ...] = ()  # check ids to leave out
    seed: int | None = None  # None: the config's, else 0
    device: str | None = None  # None: the config's, else auto
    fail_on: str = "fail"  # "fail", or "warn" to fail the run on warnings too
    debug: bool = False  # let exceptions through instead of turning them into results and messages
    quick: bool = False  # skip the training runs the catalog does not mark in_quick
    try_fixes: bool = False  # rerun the overfit test with the top likely causes' fixes applied
    time_budget: float | None = None  # seconds for the whole run, loading included; None: no limit
    allow_errors: bool = False  # a check that crashes does not make the run incomplete (exit 3)
    threads: int | None = None  # torch CPU threads during the run; None: the config's, else nndoctor.threads' default
