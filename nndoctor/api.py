"""The Python API: ``from nndoctor import check``. Same engine, same Report as the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from nndoctor import catalog, engine, rng
from nndoctor.config import Config
from nndoctor.errors import InputError
from nndoctor.loading import build_subject
from nndoctor.options import RunOptions
from nndoctor.result import Report
from nndoctor.threads import choose as choose_threads, torch_threads, validate as validate_threads

FAIL_ON = ("fail", "warn")


def check(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Any = None,
    optimizer: Callable | torch.optim.Optimizer | None = None,
    task: str | None = None,
    only: Iterable[str] | str = (),
    skip: Iterable[str] | str = (),
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    device: str = "auto",
    fail_on: str = "fail",
    quick: bool = False,
    output: Any = None,
    target_key: str | None = None,
    input_key: str | None = None,
    regularization: Callable[[nn.Module], torch.Tensor] | None = None,
    try_fixes: bool = False,
    time_budget: float | None = None,
    keep_hooks: bool = False,
    threads: int | None = None,
) -> Report:
    """Run the checklist on objects you already have; the model and dataset are never modified.

    The arguments mirror the model file and nndoctor.yaml:

    - ``dataset``: a map-style Dataset of (input, target) pairs, or of dicts split by
      ``target_key`` (default "labels", then "label"); the other keys reach the model as keyword
      arguments, or only ``input_key``'s value when it is given.
    - ``loss_fn``: a callable (output, target) -> scalar tensor; by default the task's usual loss,
      or a Lightning-style module's own training_step.
    - ``optimizer``: a factory taking the parameters (``lambda p: torch.optim.SGD(p, lr=0.1)``,
      ``functools.partial(torch.optim.AdamW, lr=3e-4)``) or an optimizer instance built for
      ``model``: nndoctor trains copies of the model, so an instance is rebuilt for each copy as
      ``type(opt)`` with ``opt.defaults`` and each parameter group's own settings (its state, such
      as momentum, is not copied). Default: a Lightning-style module's configure_optimizers(),
      else Adam(lr=1e-3).
    - ``thresholds``: per-check overrides, as under ``checks: thresholds:`` in nndoctor.yaml,
      e.g. ``{"initial_loss": {"fail_ratio": 3}}``.
    - ``only`` / ``skip``: check ids (a list, or one comma-separated string).
    - ``output``: which part of a dict/tuple/object output is the prediction (a key, an index or
      an attribute); by default a tensor itself, else ``logits``, else the first element.
    - ``regularization``: the model file's ``regularization(model)``, an explicit penalty the
      training adds to the loss.
    - ``fail_on``: "fail", or "warn" to make warnings fail ``report.passed`` too.
    - ``time_budget``: seconds for the run; checks that cannot run in time are reported as not
      checked and the report is INCOMPLETE (``report.passed`` False).
    - ``keep_hooks``: let forward/backward hooks you registered on the model fire on nndoctor's
      copies too (default False: they would fire on every one of hundreds of passes).
    The global random state (torch, numpy, random) is the same after the call as before.
    - ``threads``: torch's CPU thread count during the run (default: half the usable cores, 1 to
      4); your own ``torch.get_num_threads()`` setting is restored afterwards.

    Returns the Report the CLI renders (``passed``, ``result(id)``, ``results``, ``to_json()``,
    ``to_markdown()``). Raises nndoctor.errors.InputError for unusable input.
    """
    if fail_on not in FAIL_ON:
        raise InputError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}.")
    # The config's path only names where ids and thresholds came from, in error messages.
    with rng.preserved():  # loading runs the model too (dropout draws): the caller's RNG is left as found
        config = Config(path=Path("nndoctor.check()"), thresholds=dict(thresholds or {}))
        options = RunOptions(
            only=tuple(_ids(only)), skip=tuple(_ids(skip)), fail_on=fail_on, quick=quick, try_fixes=try_fixes,
            time_budget=time_budget, threads=validate_threads(threads, "nndoctor.check()"),
        )
        selection = engine.plan(config, options)
        with torch_threads(choose_threads(options.threads).count):  # building the subject runs the model too
            subject = build_subject(
                Path("<python>"), model, dataset, loss=loss_fn, make_optimizer=optimizer,
                task=task, device=device, seed=seed, output_selector=output, penalty=regularization,
                target_key=target_key, input_key=input_key, keep_hooks=keep_hooks,
            )
        return engine.run_subject(subject, selection, options)


def _ids(value: Iterable[str] | str) -> list[str]:
    """Check ids from a list or a comma-separated string (a bare string is not a list of letters)."""
    items = value.split(",") if isinstance(value, str) else value
    return [i.strip() for i in items if i.strip()]


__all__ = ["check", "catalog"]
