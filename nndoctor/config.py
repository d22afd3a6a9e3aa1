"""nndoctor.yaml: the run's settings, read with yaml.safe_load and validated up front.

Every path in a config is relative to the config file. Unknown keys are errors (a typo such as
``tresholds`` must not be ignored silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from nndoctor.errors import InputError
from nndoctor.threads import validate as validate_threads

CONFIG_NAME = "nndoctor.yaml"
TASKS = ("classification", "binary", "multilabel", "regression")
DEVICES = ("auto", "cpu", "cuda")
_TOP_KEYS = {
    "model", "data", "task", "loss", "optimizer", "device", "seed", "checks", "output",
    "input_key", "target_key", "time_budget", "threads",
}
_CHECK_KEYS = {"skip", "only", "thresholds"}


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    model: Path | None = None
    data: Any = None  # a mapping (inline spec) or a Path to a spec file
    task: str | None = None
    loss: Any = None  # "CrossEntropyLoss" or {"name": ..., **kwargs}
    optimizer: Any = None  # "SGD" or {"name": ..., "lr": ..., **kwargs}
    device: str = "auto"
    seed: int = 0
    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    output: Any = None  # which part of a dict/tuple model output is the prediction
    input_key: str | None = None  # dict batches: the key the model takes (see README)
    target_key: str | None = None
    time_budget: float | None = None  # seconds for the whole run (--time-budget wins)
    threads: int | None = None  # torch CPU threads; None: half the cores (nndoctor.threads)


MAX_SEED = 2**63 - 1  # torch.manual_seed's range


def valid_seed(seed: Any) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED


def _fail(path: Path, what: str) -> InputError:
    return InputError(f"Config {path}: {what}")


def read_yaml(path: Path, name: str) -> Any:
    """safe_load a user's YAML file; syntax and read errors become one-paragraph InputErrors that
    start with ``name`` (e.g. "Config nndoctor.yaml") and give the line and column."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{name} is not valid YAML{where} ({problem}). Fix the syntax and run again.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} cannot be read ({exc}).") from None


def load_config(path: Path) -> Config:
    if not path.is_file():
        raise InputError(f"Config file {path} does not exist. Pass an existing file to --config.")
    raw = read_yaml(path, f"Config {path}:")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping of settings (model:, data:, task:, ...), not a list or a scalar.")
    if "batch_size" in raw:
        raise _fail(path, "batch_size is not read: each check sizes its own batches (see `nndoctor explain ID` for "
                          "the batch thresholds). Remove the key.")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}. Allowed keys: {', '.join(sorted(_TOP_KEYS))}.")
    base = path.parent
    task = raw.get("task")
    if task is not None and task not in TASKS:
        raise _fail(path, f"task must be one of {', '.join(TASKS)}, not {task!r}.")
    device = raw.get("device", "auto")
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise _fail(path, f"device must be one of {', '.join(DEVICES)}, not {device!r}.")
    seed = raw.get("seed", 0)
    if not valid_seed(seed):
        raise _fail(path, f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}.")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise _fail(path, f"model: must be the path of your model file (model: model.py), not {model!r}.")
    budget = raw.get("time_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
        raise _fail(path, f"time_budget must be a number of seconds above 0, not {budget!r}.")
    checks = raw.get("checks") or {}
    if not isinstance(checks, dict) or set(checks) - _CHECK_KEYS:
        raise _fail(path, "checks: must be a mapping with the keys skip, only and thresholds.")
    if not isinstance(checks.get("thresholds") or {}, dict):
        raise _fail(path, "checks: thresholds: must map check ids to their settings "
                          "(thresholds: {initial_loss: {fail_ratio: 3}}), not a list or a value.")
    data = raw.get("data")
    if isinstance(data, str):
        data = base / data
    elif data is not None and not isinstance(data, dict):
        raise _fail(path, "data: must be a path to a data spec or an inline mapping (kind: ...).")
    return Config(
        path=path,
        model=(base / model) if model else None,
        data=data,
        task=task,
        loss=raw.get("loss"),
        optimizer=raw.get("optimizer"),
        device=str(device),
        seed=seed,
        skip=tuple(_id_list(path, checks.get("skip"), "checks.skip")),
        only=tuple(_id_list(path, checks.get("only"), "checks.only")),
        thresholds=dict(checks.get("thresholds") or {}),
        output=raw.get("output"),
        input_key=raw.get("input_key"),
        target_key=raw.get("target_key"),
        time_budget=float(budget) if budget is not None else None,
        threads=validate_threads(raw.get("threads"), f"Config {path}"),
    )


def _id_list(path: Path, value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _fail(path, f"{key} must be a list of check ids.")


def find_config(model_path: Path) -> Path | None:
    candidate = model_path.parent / CONFIG_NAME
    return candidate if candidate.is_file() else None
