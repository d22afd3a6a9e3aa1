"""Runs the selected checks, each isolated: an exception becomes an `error` result, never a crash.

Checks are modules in nndoctor.checks, one per catalog id, each defining
``run(ctx, thresholds) -> Finding``. The runner adds identity and timing from the catalog.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from nndoctor import budget
from nndoctor.budget import Deadline, Stop
from nndoctor.catalog import CheckSpec
from nndoctor.context import Context
from nndoctor.errors import InputError
from nndoctor.usercode import exit_message, exits_reported
from nndoctor.result import CheckResult, Finding, Status


@dataclass(frozen=True)
class Selection:
    to_run: tuple[CheckSpec, ...]
    skipped: tuple[tuple[CheckSpec, str], ...]  # (spec, why) for checks the user left out
    catalog: tuple[CheckSpec, ...] = ()  # every check, the user's overrides merged: shared runs' settings

    @property
    def specs(self) -> dict[str, CheckSpec]:
        return {spec.id: spec for spec in self.catalog}


def select(
    specs: Iterable[CheckSpec], only: Iterable[str] = (), skip: Iterable[str] = (), quick: bool = False
) -> Selection:
    specs = tuple(specs)
    only, skip = set(only), set(skip)
    to_run, skipped = [], []
    for spec in specs:
        if only and spec.id not in only:
            continue  # not asked for: not shown at all
        if spec.id in skip:
            skipped.append((spec, "skipped on request"))
        elif quick and not spec.in_quick and spec.id not in only:
            skipped.append((spec, "skipped by --quick (a training run)"))
        else:
            to_run.append(spec)
    return Selection(tuple(to_run), tuple(skipped), specs)


def check_module(check_id: str):
    return importlib.import_module(f"nndoctor.checks.{check_id}")


def run_one(ctx: Context, spec: CheckSpec, debug: bool = False) -> CheckResult:
    """Run one check; an exception becomes an `error` result (see ``run_checks`` for when it is
    a symptom of another check's finding instead)."""
    start = time.perf_counter()
    ctx.seed_everything()  # every check starts from the same RNG state: order does not matter
    error = None
    try:
        with exits_reported():
            finding = check_module(spec.id).run(ctx, spec.thresholds)
    except SystemExit as exc:  # the user's code called sys.exit() inside a forward, a loss, ...
        raise InputError(exit_message(exc, ctx.subject.path, "while nndoctor ran it")) from None
    except InputError:
        raise  # the input turned out unusable part-way (an item that raises): the run stops
    except Exception as exc:
        if debug:
            raise
        error = traceback.format_exc()
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        finding = Finding(Status.ERROR, f"the check crashed: {type(exc).__name__}: {exc}", {"crash": f"{type(exc).__name__}: {first_line}"})
    try:
        codes = tuple(spec.qualify(code) for code in finding.codes)
    except KeyError as exc:  # nndoctor's own bug: reported, counted as a check error by the zoo
        finding, codes = Finding(Status.ERROR, f"internal error: {exc.args[0]}"), ()
    fix = finding.fix or spec.fix if finding.status in (Status.WARN, Status.FAIL) else None
    return CheckResult(
        id=spec.id,
        title=spec.title,
        section=spec.section,
        status=finding.status,
        summary=finding.summary,
        metrics=dict(finding.metrics),
        evidence=tuple(finding.evidence),
        tables=tuple(finding.tables),
        fix=fix,
        duration_s=time.perf_counter() - start,
        plots=tuple(finding.plots),
        error=error,
        codes=codes,
    )


def skipped_result(spec: CheckSpec, why: str) -> CheckResult:
    return CheckResult(id=spec.id, title=spec.title, section=spec.section, status=Status.SKIP, summary=why)


class _Guards:
    """The checks the catalog marks ``explains_crashes`` (data_integrity: labels the loss rejects;
    trainable_params: nothing to train): once one fails, a crash of another check is a symptom of
    that finding, reported as a skip pointing at it instead of an error. A guard is run on demand,
    whether or not it was selected, so that the verdict does not depend on the selection; its
    result is kept for its own turn."""

    def __init__(self, ctx: Context, selection: Selection, debug: bool):
        self.ctx, self.debug = ctx, debug
        self.specs = [spec for spec in selection.catalog if spec.explains_crashes]
        self.results: dict[str, CheckResult] = {}

    def result(self, spec: CheckSpec) -> CheckResult:
        if spec.id not in self.results:
            self.results[spec.id] = run_one(self.ctx, spec, self.debug)
        return self.results[spec.id]

    def explain(self, crashed: CheckResult) -> CheckResult:
        failed = next((g.id for g in self.specs if g.id != crashed.id and self.result(g).status is Status.FAIL), None)
        if failed is None:
            return crashed
        return replace(
            crashed, status=Status.SKIP, error=None, metrics={},
            summary=f"cannot run on this setup ({crashed.metrics.get('crash', '')}); fix what {failed} reports first",
        )


@dataclass(frozen=True)
class Outcome:
    """What running the checks gave: a result for every check, and why the run stopped before
    its end, if it did (the time budget, Ctrl-C, SIGTERM, or input that turned out unusable)."""

    results: tuple[CheckResult, ...]
    stopped: str | None = None
    input_problem: str | None = None  # the one paragraph about input that could not be used


def run_checks(
    ctx: Context,
    selection: Selection,
    debug: bool = False,
    on_start: Callable[[CheckSpec], None] | None = None,
    deadline: Deadline = Deadline(None),
) -> Outcome:
    """Each selected check in catalog order, isolated. The run stops early, every check not run
    then reported as a skip saying why, when the deadline passes, on Ctrl-C or SIGTERM (``Stop``),
    or when the input turns out unusable part-way (a dataset item that raises, shapes that
    change): that is one input problem, not an error in every check after it."""
    results: dict[str, CheckResult] = {}
    guards = _Guards(ctx, selection, debug)
    stopped = input_problem = None
    for spec in selection.to_run:
        if stopped is None and deadline.expired():
            stopped = deadline.reason
        if stopped is not None:
            results[spec.id] = skipped_result(spec, f"not checked: {stopped}")
            continue
        if on_start:
            on_start(spec)
        try:
            with budget.enforced(deadline):
                result = guards.results.get(spec.id) or run_one(ctx, spec, debug)
                results[spec.id] = guards.explain(result) if result.status is Status.ERROR else result
        except Stop as stop:
            stopped = stop.reason
        except KeyboardInterrupt:
            stopped = "interrupted (Ctrl-C)"
        except InputError as exc:
            if debug:
                raise
            stopped, input_problem = "the input could not be used (see the message above the report)", str(exc)
        if spec.id not in results:
            results[spec.id] = skipped_result(spec, f"not checked: {stopped}")
        _release_freed_memory()
    for spec, why in selection.skipped:
        results[spec.id] = skipped_result(spec, why)
    order = [s.id for s in (*selection.to_run, *(s for s, _ in selection.skipped))]
    ranked = sorted(order, key=lambda i: _catalog_position(i))
    return Outcome(tuple(results[i] for i in ranked), stopped, input_problem)


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where the C library is glibc (Linux); None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_trim()


def _release_freed_memory() -> None:
    """Hand the memory a check's model copies and runs freed back to the OS. glibc keeps freed
    tensor memory in its heap, so without this the process holds on to every check's leftovers
    (measured on ResNet-18, 32x32: 190-255 MiB resident between checks without it, 10-40 MiB with
    it; the peak fell from 346 to 333 MiB)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _catalog_position(check_id: str) -> int:
    from nndoctor.catalog import catalog_ids

    return catalog_ids().index(check_id)
