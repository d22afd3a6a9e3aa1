"""Turning dataset items into batches and batches into predictions, for any input structure.

Inputs may be a tensor, a tuple/list of tensors (passed as positional arguments) or a dict
(passed as keyword arguments); model outputs may be a tensor, a tuple, a dict or an object with
``.logits`` (Hugging Face style). Everything here is structural: no statistics, no verdicts.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.utils.data import Dataset, default_collate

from nndoctor.errors import InputError


def raw_item(dataset: Dataset, index: int, where: str) -> Any:
    """``dataset[index]`` as the dataset gives it; its errors become InputError."""
    try:
        return dataset[index]
    except Exception as exc:
        raise InputError(
            f"{where}: reading item {index} of the dataset raised {type(exc).__name__}: {exc}. "
            f"Fix the dataset's __getitem__."
        ) from exc


def item(dataset: Dataset, index: int, where: str) -> tuple[Any, Any]:
    value = raw_item(dataset, index, where)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        shape = f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        raise InputError(
            f"{where}: dataset item {index} is {shape}; nndoctor needs (input, target) pairs. "
            f"Make __getitem__ return `return x, y` (for several inputs, `return (x1, x2), y`)."
        )
    return value[0], value[1]


def dataset_size(dataset: Dataset, where: str) -> int:
    if isinstance(dataset, torch.utils.data.DataLoader):
        raise InputError(
            f"{where}: build_dataset() returned a DataLoader; nndoctor needs the Dataset itself (it draws its own "
            f"batches). Return `loader.dataset`, or the dataset you build the loader from."
        )
    if not hasattr(type(dataset), "__len__"):
        raise InputError(
            f"{where}: the dataset has no len(); nndoctor needs a map-style torch.utils.data.Dataset "
            f"(with __len__ and __getitem__), not an iterable-only one."
        )
    try:
        size = len(dataset)
    except Exception as exc:  # user code: __len__ may raise anything, or return a negative number
        raise InputError(
            f"{where}: len(dataset) raised {type(exc).__name__}: {exc}. Fix the dataset's __len__ so that it "
            f"returns the number of samples (a whole number >= 1)."
        ) from None
    if size == 0:
        raise InputError(f"{where}: the dataset is empty. Point nndoctor at data with at least one (input, target) pair.")
    return size


def collate(dataset: Dataset, indices: Sequence[int], where: str) -> tuple[Any, Any]:
    indices = list(indices)
    pairs = [item(dataset, i, where) for i in indices]
    _same_dtypes(pairs, indices, where)
    try:
        inputs = default_collate([p[0] for p in pairs])
        targets = default_collate([p[1] for p in pairs])
    except Exception as exc:
        raise InputError(
            f"{where}: dataset items cannot be stacked into a batch ({exc}). Every input must have "
            f"the same shape and type (tensors, numbers or numpy arrays), and likewise every target."
        ) from None
    return inputs, targets


def _dtypes(value: Any) -> tuple:
    if isinstance(value, torch.Tensor):
        return (value.dtype,)
    if isinstance(value, dict):
        return tuple(d for k in sorted(value, key=str) for d in _dtypes(value[k]))
    if isinstance(value, (list, tuple)):
        return tuple(d for v in value for d in _dtypes(v))
    return ()


def _same_dtypes(pairs: list[tuple[Any, Any]], indices: list[int], where: str) -> None:
    """Items whose tensors differ in dtype (float32 beside float64) would be silently promoted
    when stacked, and the model would then be blamed for a dtype it never asked for."""
    if not pairs:
        return
    first = (_dtypes(pairs[0][0]), _dtypes(pairs[0][1]))
    for index, (x, y) in zip(indices, pairs):
        seen = (_dtypes(x), _dtypes(y))
        if seen != first and len(seen[0]) == len(first[0]) and len(seen[1]) == len(first[1]):
            part = "input" if seen[0] != first[0] else "target"
            a, b = (first[0], seen[0]) if part == "input" else (first[1], seen[1])
            theirs = ", ".join(str(d).replace("torch.", "") for d in b)
            ours = ", ".join(str(d).replace("torch.", "") for d in a)
            raise InputError(
                f"{where}: dataset item {index} has a {part} of dtype {theirs}, while item {indices[0]} has "
                f"{ours}; stacked together they would be silently converted. Make __getitem__ return one dtype "
                f"for every item (e.g. `.float()`)."
            )


def first_batch(dataset: Dataset, where: str, size: int) -> tuple[Any, Any]:
    n = dataset_size(dataset, where)
    return collate(dataset, range(min(n, size)), where)


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def take(value: Any, rows: torch.Tensor) -> Any:
    """The given rows (samples) of a batch of any structure; non-tensor values are kept whole."""
    if isinstance(value, torch.Tensor):
        return value[rows.to(value.device)]
    if isinstance(value, dict):
        return {k: take(v, rows) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(take(v, rows) for v in value)
    return value


def call_model(model: torch.nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


def select_output(output: Any, selector: Any = None) -> torch.Tensor:
    """The prediction inside a model's output: ``selector`` is a key, an index or an attribute;
    without one, a tensor is itself, ``.logits``/``["logits"]`` is taken (a Hugging Face
    ModelOutput is a dict), else the first element that is not None."""
    if selector is not None:
        if isinstance(output, dict):
            return output[selector]
        if isinstance(output, (list, tuple)):
            return output[int(selector)]
        return getattr(output, str(selector))
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        return output["logits"] if "logits" in output else next(iter(output.values()))
    if hasattr(output, "logits"):
        return output.logits
    present = [v for v in output if v is not None] if isinstance(output, (list, tuple)) else []
    if present:  # e.g. (None, logits): a Hugging Face tuple output without a loss
        return select_output(present[0])
    raise TypeError(f"model returned {type(output).__name__}, which holds no tensor")


def describe(value: Any) -> str:
    """Shape and dtype of a (possibly nested) batch, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def batch_size_of(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, dict):
        return batch_size_of(next(iter(inputs.values())))
    return batch_size_of(inputs[0])


def main_tensor(inputs: Any) -> torch.Tensor:
    """The first tensor of a batch: what statistics about 'the input' are computed on."""
    if isinstance(inputs, torch.Tensor):
        return inputs
    if isinstance(inputs, dict):
        return main_tensor(next(iter(inputs.values())))
    return main_tensor(inputs[0])
