"""The dataset's inputs and targets as the data checks see them.

A column is read whole where the dataset keeps it in memory (``TensorDataset.tensors``, a
torchvision-style ``.targets`` list, through ``Subset`` and ``ConcatDataset``), so a single NaN or
a rare class among 60,000 samples is not missed; otherwise it is the run's scan (``ctx.scan()``,
up to 2048 samples). A stored column is trusted only if it equals what ``__getitem__`` returned
for the scanned samples: a dataset that transforms its items must be judged on the transformed
values, which only the scan has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from nndoctor import batching
from nndoctor.context import SCAN_ELEMENT_BUDGET, Context

INPUTS, TARGETS = 0, 1


@dataclass(frozen=True)
class Column:
    values: Any  # a batch: a tensor, or the tuple/dict structure the dataset's items hold
    indices: torch.Tensor  # dataset index of each row of ``values``
    dataset_size: int

    @property
    def complete(self) -> bool:
        return len(self.indices) == self.dataset_size

    @property
    def coverage(self) -> str:
        if self.complete:
            return f"all {self.dataset_size} samples"
        return f"a scan of {len(self.indices)} of {self.dataset_size} samples"


def dataset_inputs(ctx: Context) -> Column:
    return _column(ctx, INPUTS)


def dataset_targets(ctx: Context) -> Column:
    return _column(ctx, TARGETS)


def ignore_index(loss_fn: Any) -> int:
    """The label value the loss skips: its ignore_index, else PyTorch's default -100, which is also
    the usual padding label of hand-written losses."""
    return getattr(loss_fn, "ignore_index", -100)


def named_tensors(value: Any, name: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of a batch with its place in the structure ("", "[1]", "['mask']")."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from named_tensors(item, f"{name}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from named_tensors(item, f"{name}[{i}]")


def _column(ctx: Context, position: int) -> Column:
    inputs, targets = ctx.scan()
    scanned = (inputs, targets)[position]
    # ctx.indices(n) is seeded and deterministic: the scan's n gives back the scan's indices.
    indices = torch.tensor(ctx.indices(batching.batch_size_of(inputs)), dtype=torch.long)
    size = ctx.dataset_size
    stored = _stored_column(ctx.subject.dataset, position)
    if stored is not None and stored.dim() > 0 and len(stored) == size and _same(stored[indices], scanned):
        return Column(stored, torch.arange(size), size)
    return Column(scanned, indices, size)


def _stored_column(dataset: Dataset, position: int) -> torch.Tensor | None:
    """The whole input (0) or target (1) column when the dataset holds it in memory, else None."""
    if isinstance(dataset, Subset):
        inner = _stored_column(dataset.dataset, position)
        return None if inner is None else inner[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, ConcatDataset):
        parts = [_stored_column(d, position) for d in dataset.datasets]
        if any(p is None for p in parts):
            return None
        try:
            return torch.cat(parts)
        except (RuntimeError, TypeError):
            return None
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, (tuple, list)) and len(tensors) == 2 and isinstance(tensors[position], torch.Tensor):
        column = tensors[position]
        return column if column.numel() <= SCAN_ELEMENT_BUDGET else None
    if position == TARGETS and getattr(dataset, "target_transform", None) is None:
        try:
            return torch.as_tensor(getattr(dataset, "targets"))
        except (AttributeError, TypeError, ValueError, RuntimeError):
            return None
    return None


def _same(stored: torch.Tensor, scanned: Any) -> bool:
    if not isinstance(scanned, torch.Tensor) or stored.shape != scanned.shape or stored.dtype != scanned.dtype:
        return False
    equal = stored == scanned
    if stored.is_floating_point():
        equal |= stored.isnan() & scanned.isnan()
    return bool(equal.all())
