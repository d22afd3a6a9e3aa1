"""One nndoctor run, from paths (or objects) to a finished Report. The CLI and the Python API both
come through here, so they give the same results."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from nndoctor import catalog, diagnosis, runner
from nndoctor.catalog import CheckSpec
from nndoctor.config import Config, find_config, load_config
from nndoctor.context import Context
from nndoctor.errors import InputError
from nndoctor.loading import Subject, load_subject
from nndoctor.result import Report, Status


def resolve_config(target: Path, config_path: Path | None, data_path: Path | None) -> tuple[Path, Config]:
    """The model file and the config from what the user passed: a model.py, its folder or a
    config YAML as the target; an explicit --config; or an nndoctor.yaml beside model.py."""
    if target.suffix in (".yaml", ".yml") and config_path is None:
        config_path = target
    config = load_config(config_path) if config_path else Config()
    if target.suffix in (".yaml", ".yml"):
        if config.model is None:
            raise InputError(f"Config {target} names no model file. Add `model: model.py` to it.")
        model_path = config.model
    else:
        model_path = target / "model.py" if target.is_dir() else target
        if config_path is None and model_path.exists():
            found = find_config(model_path)
            if found:
                config = load_config(found)
    if data_path is not None:
        if not data_path.is_file():
            raise InputError(f"Data spec {data_path} does not exist. Pass an existing YAML file to --data.")
        config = replace(config, data=data_path)
    return model_path, config


def plan(
    config: Config, only: Iterable[str] = (), skip: Iterable[str] = (), quick: bool = False
) -> runner.Selection:
    where = str(config.path or "the command line")
    only = catalog.validate_ids(list(only) or list(config.only), f"{where} (only)")
    skip = catalog.validate_ids(list(skip) + list(config.skip), f"{where} (skip)")
    specs = catalog.with_overrides(catalog.load_catalog(), config.thresholds, where)
    return runner.select(specs, only=only, skip=skip, quick=quick)


def run_subject(
    subject: Subject,
    selection: runner.Selection,
    fail_on: str = "fail",
    debug: bool = False,
    quick: bool = False,
    try_fixes: bool = False,
    on_start: Callable[[CheckSpec], None] | None = None,
) -> Report:
    start = time.perf_counter()
    ctx = Context(subject, options={"quick": quick, "try_fixes": try_fixes})
    results = runner.run_checks(ctx, selection, debug=debug, on_start=on_start)
    notes = [
        f"Task: {subject.task} ({subject.task_source}).",
        f"Loss: {_describe_loss(subject)} ({subject.loss_source}). Optimizer: {subject.optimizer_source}.",
        *subject.notes,
    ]
    if quick:
        skipped = [s.id for s, why in selection.skipped if "--quick" in why]
        if skipped:
            notes.append(f"--quick skipped: {', '.join(skipped)}.")
    report = Report(
        target=str(subject.path),
        task=subject.task,
        task_source=subject.task_source,
        seed=subject.seed,
        device=str(subject.device),
        results=results,
        duration_s=time.perf_counter() - start,
        notes=tuple(notes),
        fail_on=Status(fail_on),
    )
    return diagnosis.add_causes(report, ctx)


def _describe_loss(subject: Subject) -> str:
    loss = subject.loss_fn
    return type(loss).__name__ if not callable(loss) or hasattr(loss, "forward") else getattr(loss, "__name__", "custom")


def run_path(
    target: Path,
    config_path: Path | None = None,
    data_path: Path | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    seed: int | None = None,
    device: str | None = None,
    fail_on: str = "fail",
    debug: bool = False,
    quick: bool = False,
    try_fixes: bool = False,
    on_start: Callable[[CheckSpec], None] | None = None,
) -> Report:
    model_path, config = resolve_config(target, config_path, data_path)
    selection = plan(config, only, skip, quick)  # validate ids before the slow load
    subject = load_subject(model_path, config, device=None if device in (None, "") else device, seed=seed)
    return run_subject(subject, selection, fail_on, debug, quick, try_fixes, on_start)


LOOP_SECTION = "Training loop"


def run_script(
    script: Path,
    args: Iterable[str] = (),
    steps: int = 100,
    time_budget: float | None = None,
    model: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    seed: int = 0,
    device: str | None = None,
    fail_on: str = "fail",
    debug: bool = False,
    quick: bool = False,
    on_start: Callable[[CheckSpec], None] | None = None,
) -> Report:
    """`nndoctor run`: observe the script's own loop, then run the loop checks on what it did and
    the rest of the checklist on the setup captured from it."""
    from nndoctor import capture, observer

    start = time.perf_counter()
    selection = plan(Config(), only, skip, quick)
    observation = observer.observe(script, list(args), steps, time_budget)
    names = capture.model_names(observation)
    if model is not None and model not in names:
        raise InputError(f"--model {model}: the script trained {', '.join(names) or 'no model'}; pass one of these names.")
    examined = model or (names[0] if names else "")
    subject, why = capture.build(observation, examined, device or "auto", seed) if examined else (None, "no model was seen")
    if subject is None:
        selection = _loop_checks_only(selection, f"the setup could not be captured from the script: {why}")
    ctx = Context(subject, options={"quick": quick, "try_fixes": False}, loop=observation.trace)
    results = runner.run_checks(ctx, selection, debug=debug, on_start=on_start)
    report = Report(
        target=str(script),
        task=subject.task if subject else "unknown",
        task_source=subject.task_source if subject else "not captured",
        seed=seed,
        device=str(subject.device) if subject else "cpu",
        results=results,
        duration_s=time.perf_counter() - start,
        notes=tuple(_run_header(observation.trace, examined, subject)),
        fail_on=Status(fail_on),
        command="run",
    )
    return diagnosis.add_causes(report, ctx)


def _loop_checks_only(selection: runner.Selection, why: str) -> runner.Selection:
    loop = tuple(s for s in selection.to_run if s.section == LOOP_SECTION)
    others = tuple((s, why) for s in selection.to_run if s.section != LOOP_SECTION)
    return runner.Selection(loop, selection.skipped + others)


def _run_header(trace, examined: str, subject: Subject | None) -> list[str]:
    """What was captured and from where, for the report's notes."""
    ran = " ".join(("python", Path(trace.script).name, *trace.args))
    stop = {
        "steps": f"stopped by nndoctor after {len(trace.steps)} optimizer steps (--steps)",
        "time_budget": f"stopped by nndoctor after {trace.wall_s:.0f} s (--time-budget), {len(trace.steps)} optimizer steps",
        "finished": f"ran to its end: {len(trace.steps)} optimizer steps",
        "interrupted": f"interrupted (Ctrl-C) after {len(trace.steps)} optimizer steps: the report covers what was observed",
        "error": f"raised after {len(trace.steps)} optimizer steps: {trace.error}",
    }[trace.stop_reason]
    lines = [f"Script: `{ran}` ran in-process, {stop}. Its own output went to stderr."]
    for info in trace.models:
        mark = " (examined)" if info.name == examined and len(trace.models) > 1 else ""
        lines.append(f"Model{mark}: {info.name}, {info.parameters:,} parameters ({info.trainable:,} trainable), "
                     f"stepped by {', '.join(info.optimizers)}.")
    for opt in trace.optimizers:
        groups = "; ".join(f"lr {g.get('lr'):g}" + (f", weight_decay {g['weight_decay']:g}" if g.get("weight_decay") else "")
                           for g in opt.groups)
        sched = f", scheduler {', '.join(opt.schedulers)}" if opt.schedulers else ""
        lines.append(f"Optimizer: {opt.name}, {len(opt.groups)} group(s) ({groups}){sched}, {opt.tensors} tensors.")
    for loss in trace.losses:
        lines.append(f"Loss: {loss.name} ({loss.kind})" + (f", called at {loss.line}." if loss.line else "."))
    lines.append(f"Batches taken: {trace.batches_taken} ({trace.samples_taken} samples) from the script's own data.")
    if len(trace.models) > 1:
        lines.append(f"Several models were trained; the checklist examined {examined} (choose with --model NAME).")
    if subject is not None:
        lines.append(f"Task: {subject.task} ({subject.task_source}).")
    return lines
