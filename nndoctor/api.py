"""The Python API: ``from nndoctor import check``. Same engine, same Report as the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from torch import nn
from torch.utils.data import Dataset

from nndoctor import catalog, engine
from nndoctor.config import Config
from nndoctor.loading import build_subject
from nndoctor.result import Report


def check(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Any = None,
    optimizer: Callable | None = None,
    task: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    device: str = "auto",
    fail_on: str = "fail",
    quick: bool = False,
    output: Any = None,
) -> Report:
    """Run the checklist on objects you already have.

    ``optimizer`` is a factory taking the model's parameters (e.g. ``lambda p: torch.optim.SGD(p,
    lr=0.1)``), because nndoctor builds optimizers for its own copies of the model. The model and
    dataset are never modified. Raises nndoctor.errors.InputError for unusable input.
    """
    config = Config(thresholds=dict(thresholds or {}))
    selection = engine.plan(config, only, skip, quick)
    subject = build_subject(
        Path("<python>"), model, dataset, loss=loss_fn, make_optimizer=optimizer,
        task=task, device=device, seed=seed, output_selector=output,
    )
    return engine.run_subject(subject, selection, fail_on=fail_on, quick=quick)


__all__ = ["check", "catalog"]
