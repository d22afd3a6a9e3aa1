"""One nndoctor run, from paths (or objects) to a finished Report. The CLI and the Python API both
come through here, so they give the same results."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from nndoctor import catalog, diagnosis, runner, threads as torch_threads
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
    threads: torch_threads.ThreadChoice | None = None,
) -> Report:
    """Run the selected checks with torch's CPU thread count ``threads`` (None: the default, see
    nndoctor.threads); the caller's setting is restored afterwards."""
    start = time.perf_counter()
    threads = threads or torch_threads.choose(None)
    ctx = Context(subject, options={"quick": quick, "try_fixes": try_fixes})
    with torch_threads.torch_threads(threads.count):
        results = runner.run_checks(ctx, selection, debug=debug, on_start=on_start)
    notes = [
        f"Task: {subject.task} ({subject.task_source}).",
        f"Loss: {_describe_loss(subject)} ({subject.loss_source}). Optimizer: {subject.optimizer_source}.",
        threads.note,
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
    threads: int | None = None,
) -> Report:
    model_path, config = resolve_config(target, config_path, data_path)
    selection = plan(config, only, skip, quick)  # validate ids before the slow load
    choice = torch_threads.choose(threads if threads is not None else config.threads)
    with torch_threads.torch_threads(choice.count):  # loading runs the model too
        subject = load_subject(model_path, config, device=None if device in (None, "") else device, seed=seed)
        return run_subject(subject, selection, fail_on, debug, quick, try_fixes, on_start, choice)
