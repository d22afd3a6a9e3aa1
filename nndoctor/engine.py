"""One nndoctor run, from paths (or objects) to a finished Report. The CLI and the Python API both
come through here, so they give the same results."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from nndoctor import budget, catalog, diagnosis, fixes, rng, runner
from nndoctor import threads as torch_threads
from nndoctor.budget import Deadline, Stop
from nndoctor.catalog import CheckSpec
from nndoctor.config import Config, find_config, load_config
from nndoctor.context import Context
from nndoctor.errors import InputError
from nndoctor.loading import Subject, load_subject
from nndoctor.options import RunOptions
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


def input_files(target: Path, config_path: Path | None, data_path: Path | None) -> set[Path]:
    """The files a run reads (model file, config, data spec), resolved: never to be written."""
    model_path, config = resolve_config(target, config_path, data_path)
    found = {model_path, config_path, data_path, config.path, config.data if isinstance(config.data, Path) else None}
    return {path.resolve() for path in found if path is not None}


def plan(config: Config, options: RunOptions) -> runner.Selection:
    where = str(config.path or "the command line")
    only = catalog.validate_ids(list(options.only) or list(config.only), f"{where} (only)")
    skip = catalog.validate_ids(list(options.skip) + list(config.skip), f"{where} (skip)")
    specs = catalog.with_overrides(catalog.load_catalog(), config.thresholds, where)
    return runner.select(specs, only=only, skip=skip, quick=options.quick)


def run_subject(
    subject: Subject,
    selection: runner.Selection,
    options: RunOptions = RunOptions(),
    on_start: Callable[[CheckSpec], None] | None = None,
    deadline: Deadline | None = None,
) -> Report:
    """Run the selected checks, rank the likely causes (a pure step), then, when asked, try the
    top causes' fixes (a stage of its own: it trains models). The global random state is left as
    it was found."""
    start = time.perf_counter()
    deadline = deadline or Deadline(options.time_budget)
    ctx = Context(subject, options={"quick": options.quick}, specs=selection.specs)
    with rng.preserved(), torch_threads.torch_threads(torch_threads.choose(options.threads).count):
        outcome = runner.run_checks(ctx, selection, debug=options.debug, on_start=on_start, deadline=deadline)
        report = _report(subject, selection, options, outcome)
        if options.try_fixes and report.causes and outcome.stopped is None:
            with budget.enforced(deadline):
                report = replace(report, causes=fixes.try_fixes(ctx, report.causes))
    return replace(report, duration_s=time.perf_counter() - start)


def _report(subject: Subject, selection: runner.Selection, options: RunOptions, outcome: runner.Outcome) -> Report:
    notes = [
        f"Task: {subject.task} ({subject.task_source}).",
        f"Loss: {_describe_loss(subject)} ({subject.loss_source}). Optimizer: {subject.optimizer_source}.",
        torch_threads.choose(options.threads).note,
        *subject.notes,
    ]
    if options.quick:
        skipped = [s.id for s, why in selection.skipped if "--quick" in why]
        if skipped:
            notes.append(f"--quick skipped: {', '.join(skipped)}.")
    report = Report(
        target=str(subject.path),
        task=subject.task,
        task_source=subject.task_source,
        seed=subject.seed,
        device=str(subject.device),
        results=outcome.results,
        notes=tuple(notes),
        fail_on=Status(options.fail_on),
        stopped=outcome.stopped,
        input_problem=outcome.input_problem,
        allow_errors=options.allow_errors,
    )
    return diagnosis.add_causes(report)


def _describe_loss(subject: Subject) -> str:
    loss = subject.loss_fn
    return type(loss).__name__ if not callable(loss) or hasattr(loss, "forward") else getattr(loss, "__name__", "custom")


def run_path(
    target: Path,
    config_path: Path | None = None,
    data_path: Path | None = None,
    options: RunOptions = RunOptions(),
    on_start: Callable[[CheckSpec], None] | None = None,
) -> Report:
    start = time.monotonic()  # the budget covers reading the config and loading the user's code too
    model_path, config = resolve_config(target, config_path, data_path)
    if options.time_budget is None:
        options = replace(options, time_budget=config.time_budget)
    if options.threads is None:
        options = replace(options, threads=config.threads)
    deadline = Deadline(options.time_budget, start=start)
    selection = plan(config, options)  # validate ids before the slow load
    try:
        with budget.enforced(deadline), torch_threads.torch_threads(torch_threads.choose(options.threads).count):
            subject = load_subject(model_path, config, device=options.device or None, seed=options.seed)
    except Stop as stop:
        raise InputError(
            f"{model_path}: loading the model and data did not finish ({stop.reason}). Something in the model "
            f"file, build_model() or build_dataset() runs for too long or never returns (a `while True:`, a "
            f"download, a wait for input); make loading quick, or raise --time-budget."
        ) from None
    return run_subject(subject, selection, options, on_start, deadline)


LOOP_SECTION = "Training loop"


def run_script(
    script: Path,
    args: Iterable[str] = (),
    steps: int = 100,
    model: str | None = None,
    options: RunOptions = RunOptions(),
    on_start: Callable[[CheckSpec], None] | None = None,
) -> Report:
    """`nndoctor run`: observe the script's own loop, then run the loop checks on what it did and
    the rest of the checklist on the setup captured from it. A time budget covers both: the script
    is stopped after half of it, the checks get what is left."""
    from nndoctor import capture, observer

    start = time.perf_counter()
    deadline = Deadline(options.time_budget)
    selection = plan(Config(), options)
    script_budget = options.time_budget / 2 if options.time_budget is not None else None
    observation = observer.observe(script, list(args), steps, script_budget)
    names = capture.model_names(observation)
    if model is not None and model not in names:
        raise InputError(f"--model {model}: the script trained {', '.join(names) or 'no model'}; pass one of these names.")
    examined = model or (names[0] if names else "")
    seed = options.seed or 0
    subject, why = capture.build(observation, examined, options.device or "auto", seed) if examined else (None, "no model was seen")
    if subject is None:
        selection = _loop_checks_only(selection, f"the setup could not be captured from the script: {why}")
    ctx = Context(subject, options={"quick": options.quick}, specs=selection.specs, loop=observation.trace)
    with torch_threads.torch_threads(torch_threads.choose(options.threads).count):
        outcome = runner.run_checks(ctx, selection, debug=options.debug, on_start=on_start, deadline=deadline)
    report = Report(
        target=str(script),
        task=subject.task if subject else "unknown",
        task_source=subject.task_source if subject else "not captured",
        seed=seed,
        device=str(subject.device) if subject else "cpu",
        results=outcome.results,
        notes=tuple(_run_header(observation.trace, examined, subject)),
        fail_on=Status(options.fail_on),
        stopped=outcome.stopped,
        input_problem=outcome.input_problem,
        allow_errors=options.allow_errors,
        command="run",
    )
    return replace(diagnosis.add_causes(report), duration_s=time.perf_counter() - start)


def watch_script(script: Path, args: Iterable[str], settings, options: RunOptions = RunOptions()) -> Report:
    """`nndoctor run --watch`: the script runs to its end (or until the watch stops it) with the
    watcher attached to whatever model and optimizer it creates; the report is the timeline."""
    from nndoctor import observer
    from nndoctor.watching.attach import watch_script as watch

    if not script.is_file():
        raise InputError(f"{script} does not exist. Pass the path of your training script: nndoctor run --watch train.py -- ARGS.")
    args = list(args)
    try:
        with observer.script_environment(script, args):
            watched = watch(script, args, settings)
    except (KeyboardInterrupt, Stop):
        observer.no_step(script, "interrupted", None, "")
    except Exception as exc:  # the script raised before its first step: nothing was watched
        observer.no_step(script, "error", exc, f"{type(exc).__name__}: {exc}.")
    if watched.report is None:
        observer.no_step(script, "finished", None, "")
    return replace(watched.report, fail_on=Status(options.fail_on), command="run --watch")


def _loop_checks_only(selection: runner.Selection, why: str) -> runner.Selection:
    loop = tuple(s for s in selection.to_run if s.section == LOOP_SECTION)
    others = tuple((s, why) for s in selection.to_run if s.section != LOOP_SECTION)
    return runner.Selection(loop, selection.skipped + others, selection.catalog)


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
