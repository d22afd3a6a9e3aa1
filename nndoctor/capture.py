"""An observed run -> a Subject, so that the whole checklist runs on the script's own setup.

The model is the copy the observer took before its first optimizer step (the weights at init);
the data are the script's own batches (the model's forward inputs, split into samples, with the
targets the loss received); the loss is the one the script applied to the model's output; the
optimizer is rebuilt from the script's optimizer (class and parameter groups) for each copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from nndoctor import adapters
from nndoctor.errors import InputError
from nndoctor.loading import Subject, build_subject
from nndoctor.observer import CapturedBatch, Observation


class CapturedSamples(Dataset):
    """The samples of the captured batches, as (inputs, target) items."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.items[index]


def model_names(observation: Observation) -> list[str]:
    return [m.name for m in observation.trace.models]


def build(observation: Observation, model: str, device: str, seed: int) -> tuple[Subject | None, str]:
    """The Subject for one observed model, or None with the reason it could not be built."""
    if model not in observation.models:
        return None, f"the model {model} was not seen before an optimizer step"
    if observation.loss_fn is None:
        return None, ("the script's loss was not seen (it is neither a torch loss module nor a torch.nn.functional "
                      "loss called in the script)")
    items = _samples(observation.batches.get(model, []))
    if not items:
        return None, "no batch with its targets was captured (the loss did not receive a tensor of targets)"
    optimizer = next((o for name, o in observation.optimizers.items()
                      if any(i.name == name and i.model == model for i in observation.trace.optimizers)), None)
    loss = observation.loss_fn
    source = next((f"{c.line}" for c in observation.trace.losses if c.line), "the script")
    try:
        subject = build_subject(
            Path(observation.trace.script), observation.models[model], CapturedSamples(items), loss=loss,
            make_optimizer=adapters.optimizer_factory(optimizer, observation.originals[model].parameters()), loss_source=f"called at {source}",
            optimizer_source=f"{type(optimizer).__name__} from the script, rebuilt for each copy", device=device, seed=seed, data_where="the script's batches",
        )
    except InputError as exc:
        return None, f"the captured setup could not be rebuilt: {exc}"
    return subject, ""


def _samples(batches: list[CapturedBatch]) -> list[tuple[Any, Any]]:
    items = []
    for batch in batches:
        if not isinstance(batch.target, torch.Tensor) or batch.target.dim() == 0:
            continue
        n = batch.target.shape[0]
        inputs = batch.kwargs if batch.kwargs and not batch.args else (batch.args[0] if len(batch.args) == 1 else batch.args)
        if not _splittable(inputs, n):
            continue
        items.extend((_row(inputs, i), batch.target[i]) for i in range(n))
    return items


def _splittable(value: Any, n: int) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() > 0 and value.shape[0] == n
    if isinstance(value, (tuple, list)):
        return bool(value) and all(_splittable(v, n) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(_splittable(v, n) for v in value.values())
    return False


def _row(value: Any, i: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value[i]
    if isinstance(value, (tuple, list)):
        return type(value)(_row(v, i) for v in value)
    return {k: _row(v, i) for k, v in value.items()}
