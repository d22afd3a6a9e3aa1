"""Data specs: a few lines of YAML that say where a dataset comes from, instead of build_dataset().

A spec is a YAML file (``--data spec.yaml`` or ``data: spec.yaml`` in nndoctor.yaml) or an inline
mapping under ``data:`` in nndoctor.yaml. Relative paths in it start from the folder of the file
that holds it. Every kind reads local files only: nndoctor never downloads. Each kind is one row
of ``KINDS`` (its keys and its builder); every key's allowed values are one row of ``RULES``, so
validation is the same code for all kinds and unknown keys are errors, never silently ignored.

    kind: factory       factory: data.py:make_dataset      args: {size: 600}
    kind: tensors       path: data.pt (dict x/y or inputs/targets, or an (x, y) tuple) | data.npz (x, y)
    kind: torchvision   class: MNIST   root: data   train: true   resize: [h, w]   normalize: {mean, std}   args: {}
    kind: imagefolder   root: images   resize: [h, w]   normalize: {mean: [..], std: [..]}
    kind: synthetic     task: classification   input_shape: [3, 32, 32]   num_classes: 10   size: 512
                        seed: 0   dtype: float | long   vocab: 100 (long only)
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from nndoctor.usercode import call_user, import_model_file
from nndoctor.config import TASKS, read_yaml
from nndoctor.errors import InputError

TENSOR_SUFFIXES = (".pt", ".pth", ".npz")
PAIR_KEYS = (("x", "y"), ("inputs", "targets"))


@dataclass(frozen=True)
class Spec:
    """A parsed spec: its values, the folder its paths start from and how messages name it."""

    values: Mapping[str, Any]
    base: Path
    name: str

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def fail(self, what: str) -> InputError:
        return InputError(f"{self.name}: {what}")

    def existing(self, relative: str, key: str, folder: bool = False) -> Path:
        path = self.base / relative
        if not (path.is_dir() if folder else path.is_file()):
            what = "folder" if folder else "file"
            raise self.fail(
                f"{key}: {relative} is not an existing {what} (looked for {path}). Paths are relative to {self.base}."
            )
        return path


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _int_list(length: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(map(_positive_int, value)) and length in (None, len(value))

    return check


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in value)


def _normalize(value: Any) -> bool:
    return (
        isinstance(value, dict) and set(value) == {"mean", "std"} and _numbers(value["mean"])
        and _numbers(value["std"]) and min(value["std"]) > 0
    )


# key -> (is the value allowed?, what is allowed, for the message)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "factory": (lambda v: isinstance(v, str) and ":" in v, "path/to/file.py:function_name"),
    "args": (lambda v: isinstance(v, dict), "a mapping of keyword arguments, e.g. {size: 600}"),
    "path": (lambda v: isinstance(v, str), "a file path such as data.pt or data.npz"),
    "root": (lambda v: isinstance(v, str), "a folder path"),
    "class": (lambda v: isinstance(v, str), "a torchvision.datasets class name such as MNIST"),
    "train": (lambda v: isinstance(v, bool), "true or false"),
    "download": (lambda v: isinstance(v, bool), "false (nndoctor never downloads)"),
    "resize": (_int_list(2), "[height, width]"),
    "normalize": (_normalize, "{mean: [...], std: [...]} with one number per channel, std > 0"),
    "task": (lambda v: v in TASKS, " | ".join(TASKS)),
    "input_shape": (_int_list(), "a list of positive integers such as [3, 32, 32]"),
    "num_classes": (_positive_int, "a positive integer"),
    "size": (_positive_int, "a positive integer"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "dtype": (lambda v: v in ("float", "long"), "float or long (integer tokens, needs vocab)"),
    "vocab": (_positive_int, "a positive integer"),
}


@dataclass(frozen=True)
class Kind:
    build: Callable[[Spec], Dataset]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


def load(spec: Path | Mapping[str, Any], where: Path) -> Dataset:
    """The dataset a spec describes. ``spec`` is a spec file or an inline mapping from the config
    at ``where`` (whose folder then anchors relative paths). Bad specs raise InputError."""
    parsed = _parse(spec, where)
    kind = _kind(parsed)
    return _checked(parsed, kind.build(parsed))


def _parse(spec: Path | Mapping[str, Any], where: Path) -> Spec:
    if isinstance(spec, Mapping):
        base = where if where.is_dir() else where.parent
        return Spec(dict(spec), base, f"Config {where} (data:)")
    path = Path(spec)
    name = f"Data spec {path}"
    if not path.is_file():
        raise InputError(f"{name} does not exist. Check data: in nndoctor.yaml (or --data).")
    values = read_yaml(path, name)
    if not isinstance(values, dict):
        raise InputError(f"{name} must be a mapping with a kind: key ({', '.join(KINDS)}).")
    return Spec(values, path.parent, name)


def _kind(spec: Spec) -> Kind:
    """The spec's kind, after checking that its keys and their values are the ones that kind takes."""
    name = spec.get("kind")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise spec.fail(f"kind must be one of {', '.join(KINDS)}, not {spec.get('kind')!r}.")
    allowed = ("kind", *kind.required, *kind.optional)
    unknown = [str(key) for key in spec.values if key not in allowed]
    if unknown:
        raise spec.fail(
            f"unknown key(s) {', '.join(unknown)} for kind {spec['kind']}. Its keys are: {', '.join(allowed)}."
        )
    missing = [key for key in kind.required if key not in spec.values]
    if missing:
        raise spec.fail(f"kind {spec['kind']} needs the key(s) {', '.join(missing)}; add them.")
    for key, value in spec.values.items():
        if key != "kind" and not RULES[key][0](value):
            raise spec.fail(f"{key}: must be {RULES[key][1]}, not {value!r}.")
    return kind


def _checked(spec: Spec, dataset: Any) -> Dataset:
    """Fail here, naming the spec, if the dataset is empty or its first item cannot be read (a
    normalize: with the wrong number of channels, a factory that returns something else)."""
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise spec.fail(f"it gave a {type(dataset).__name__}, not a map-style Dataset with __len__ and __getitem__.")
    try:
        size = len(dataset)
        if size:
            dataset[0]
    except Exception as exc:  # user data and transforms: anything may be raised
        raise spec.fail(
            f"reading the dataset (its length and first sample) raised {type(exc).__name__}: {_brief(exc)}. "
            f"Check the data files (and resize:/normalize:, if set: normalize needs one mean and std per channel)."
        ) from exc
    if size == 0:
        raise spec.fail("the dataset it describes is empty. Point it at data with at least one sample.")
    return dataset


def _brief(exc: BaseException) -> str:
    """The first line of an exception's message (torch's and torchvision's run to paragraphs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(exc).__name__


# --- factory -----------------------------------------------------------------------------------


def _factory(spec: Spec) -> Dataset:
    file, _, function = spec["factory"].rpartition(":")
    path = spec.existing(file, "factory")
    try:
        module = import_model_file(path)
        make = getattr(module, function, None)
        if not callable(make):
            defined = [n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
            raise InputError(f"{path} defines no function {function!r}; its functions are: {', '.join(defined) or 'none'}.")
        return call_user(path, function, functools.partial(make, **spec.get("args", {})))
    except InputError as exc:
        raise spec.fail(f"factory {spec['factory']}: {exc}") from exc


# --- tensors -----------------------------------------------------------------------------------


def _tensors(spec: Spec) -> Dataset:
    path = spec.existing(spec["path"], "path")
    if path.suffix not in TENSOR_SUFFIXES:
        raise spec.fail(f"path: {path.name} is neither a torch.save file (.pt, .pth) nor a NumPy .npz archive.")
    try:
        content = _read_npz(path) if path.suffix == ".npz" else torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # corrupt file, pickled objects refused by weights_only, ...
        raise spec.fail(
            f"cannot read {path} ({type(exc).__name__}: {_brief(exc)}). Save plain tensors: "
            f"torch.save({{'x': x, 'y': y}}, path) or np.savez(path, x=x, y=y)."
        ) from None
    x, y = (_as_tensor(spec, part) for part in _pair(spec, path, content))
    if len(x) != len(y):
        raise spec.fail(f"{path.name} holds {len(x)} inputs but {len(y)} targets; they must pair up one to one.")
    return TensorDataset(x, y)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:  # allow_pickle stays False: arrays only, no code
        return {name: archive[name] for name in archive.files}


def _pair(spec: Spec, path: Path, content: Any) -> tuple[Any, Any]:
    if isinstance(content, (tuple, list)) and len(content) == 2:
        return content[0], content[1]
    if isinstance(content, Mapping):
        for x_key, y_key in PAIR_KEYS:
            if x_key in content and y_key in content:
                return content[x_key], content[y_key]
        found = f"keys {', '.join(map(str, content))}"
    else:
        found = f"a {type(content).__name__}"
    raise spec.fail(
        f"{path.name} holds {found}; it must hold inputs and targets as x and y (or inputs and targets), or an (x, y) tuple."
    )


def _as_tensor(spec: Spec, value: Any) -> torch.Tensor:
    """Floats become float32 (what models hold), integers int64 (what losses and embeddings take)."""
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise spec.fail(f"{spec['path']} holds a {type(value).__name__} where a tensor or array belongs.")
    tensor = torch.as_tensor(value)
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        return tensor.float()
    return tensor.long()


# --- torchvision and imagefolder ---------------------------------------------------------------


def _torchvision(spec: Spec) -> Dataset:
    import torchvision

    name = spec["class"]
    cls = getattr(torchvision.datasets, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise spec.fail(
            f"class: torchvision.datasets has no dataset class {name!r}. Use its exact name, e.g. MNIST, "
            f"FashionMNIST, CIFAR10, SVHN."
        )
    args = dict(spec.get("args", {}))
    if spec.get("download") or args.pop("download", False):
        raise spec.fail(
            f"download: true is not allowed: nndoctor never downloads. Fetch the data once yourself "
            f"(python -c \"import torchvision; torchvision.datasets.{name}('{spec.base / spec['root']}', download=True)\") "
            f"and remove download:."
        )
    accepts = inspect.signature(cls).parameters
    if "train" in spec.values and "train" not in accepts:
        raise spec.fail(
            f"train: torchvision.datasets.{name} takes no train argument; choose the part with args: (e.g. {{split: train}})."
        )
    options = {"download": False, "train": spec.get("train", True), "transform": _image_transform(spec)}
    kwargs = {key: value for key, value in options.items() if key in accepts}
    hint = (
        f"nndoctor never downloads: fetch the files once yourself (torchvision.datasets.{name}(root, "
        f"download=True)) so that they lie under root: where {name} looks for them (and check args: if set)."
    )
    return _construct(spec, cls, {**kwargs, **args}, spec.existing(spec["root"], "root", folder=True), hint)


def _imagefolder(spec: Spec) -> Dataset:
    from torchvision.datasets import ImageFolder

    root = spec.existing(spec["root"], "root", folder=True)
    hint = "root: must hold one subfolder of images per class (root/cat/1.png, root/dog/2.png, ...)."
    return _construct(spec, ImageFolder, {"transform": _image_transform(spec)}, root, hint)


def _image_transform(spec: Spec) -> Callable:
    """PIL images to float tensors in [0, 1], optionally resized first and normalized after."""
    from torchvision import transforms

    steps = [transforms.Resize(tuple(spec["resize"]))] if "resize" in spec.values else []
    steps.append(transforms.ToTensor())
    if "normalize" in spec.values:
        steps.append(transforms.Normalize(spec["normalize"]["mean"], spec["normalize"]["std"]))
    return transforms.Compose(steps)


def _construct(spec: Spec, cls: type, kwargs: dict[str, Any], root: Path, hint: str) -> Dataset:
    try:
        return cls(str(root), **kwargs)
    except Exception as exc:  # torchvision's own checks: missing files, bad arguments, empty folders
        raise spec.fail(f"{cls.__name__}(root={str(root)!r}) raised {type(exc).__name__}: {_brief(exc)}. {hint}") from None


# --- synthetic ---------------------------------------------------------------------------------


def _synthetic(spec: Spec) -> Dataset:
    """Standardized random inputs whose targets are a fixed random function of them, so the data
    is learnable: float inputs are scored by a random linear map, token inputs by summing random
    per-token scores. Classification takes the top score, binary and multilabel the signs."""
    if (spec.get("dtype") == "long") != ("vocab" in spec.values):
        raise spec.fail("dtype: long (integer tokens) needs vocab: (the number of distinct tokens), and vocab: needs dtype: long.")
    task = spec["task"]
    width = _target_width(spec, task)
    generator = torch.Generator().manual_seed(spec.get("seed", 0))
    size, shape = spec.get("size", 512), tuple(spec["input_shape"])
    if spec.get("dtype") == "long":
        x = torch.randint(0, spec["vocab"], (size, *shape), generator=generator)
        token_scores = torch.randn(spec["vocab"], width, generator=generator)
        # Centred and scaled per column, so that no class or label is favoured on average.
        token_scores = (token_scores - token_scores.mean(dim=0)) / token_scores.std(dim=0).clamp_min(1e-6)
        scores = token_scores[x.reshape(size, -1)].sum(dim=1) / x[0].numel() ** 0.5
    else:
        x = torch.randn(size, *shape, generator=generator)
        projection = torch.nn.functional.normalize(torch.randn(x[0].numel(), width, generator=generator), dim=0)
        scores = x.reshape(size, -1) @ projection
    if task == "classification":
        return TensorDataset(x, scores.argmax(dim=1))
    if task == "regression":
        return TensorDataset(x, scores)
    return TensorDataset(x, (scores > 0).float())


def _target_width(spec: Spec, task: str) -> int:
    """Scores per sample: classes (classification), labels (multilabel), outputs (regression)."""
    width = spec.get("num_classes", 1 if task in ("binary", "regression") else None)
    if width is None or (task == "classification" and width < 2):
        raise spec.fail(f"task {task} needs num_classes: (at least 2 for classification).")
    if task == "binary" and width != 1:
        raise spec.fail("task binary has one output; remove num_classes: or use task: multilabel.")
    return width


KINDS: dict[str, Kind] = {
    "factory": Kind(_factory, ("factory",), ("args",)),
    "tensors": Kind(_tensors, ("path",)),
    "torchvision": Kind(_torchvision, ("class", "root"), ("train", "download", "resize", "normalize", "args")),
    "imagefolder": Kind(_imagefolder, ("root",), ("resize", "normalize")),
    "synthetic": Kind(_synthetic, ("task", "input_shape"), ("num_classes", "size", "seed", "dtype", "vocab")),
}
