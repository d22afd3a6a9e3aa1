"""model.py (+ config, + data spec) -> one Subject: what the checks examine.

The model file is ordinary Python that may import modules beside it. It is executed once; the
Subject keeps a pristine copy of the model that checks never touch (they get deep copies), so the
user's objects are never modified.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from nndoctor import adapters, batching, dataspec, tokens
from nndoctor.config import TASKS, Config
from nndoctor.errors import InputError
from nndoctor.usercode import call_user, import_model_file, user_frame

MODEL_NAMES = ("build_model", "get_model", "model")
DATASET_NAMES = ("build_dataset", "get_dataset", "dataset")
CLASSIFICATION_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
BINARY_LOSSES = (nn.BCEWithLogitsLoss, nn.BCELoss)
REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


@dataclass
class Subject:
    """Everything the checks need, loaded once. Never hand ``model`` itself to a check: use
    ``fresh_model()``, which returns a deep copy on the run's device."""

    path: Path
    model: nn.Module
    dataset: Dataset
    loss_fn: Callable[[Any, Any], torch.Tensor]
    make_optimizer: Callable[[Any], torch.optim.Optimizer]
    task: str
    task_source: str
    device: torch.device
    seed: int = 0
    output_width: int = 0  # last dim of the model's prediction on the first batch
    extra_penalty: Callable[[nn.Module], torch.Tensor] | None = None
    output_selector: Any = None
    notes: list[str] = field(default_factory=list)
    loss_source: str = ""
    optimizer_source: str = ""
    keep_hooks: bool = False  # let the user's own forward/backward hooks fire on nndoctor's copies
    # A token-level objective (outputs (B, T, V), labels (B, T)): language models and taggers.
    token_objective: tokens.TokenObjective | None = None

    def fresh_model(self) -> nn.Module:
        return private_copy(self.model, self.keep_hooks).to(self.device).train()

    def predict(self, model: nn.Module, inputs: Any) -> torch.Tensor:
        """Call the model and return the prediction tensor (dict/tuple/.logits outputs handled)."""
        return batching.select_output(batching.call_model(model, inputs), self.output_selector)

    def compute_loss(self, output: torch.Tensor, target: Any) -> torch.Tensor:
        return self.loss_fn(output, target)

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @property
    def num_classes(self) -> int:
        """Classes the model can predict: its output width (2 for a single-logit binary head)."""
        if self.task == "binary" and self.output_width == 1:
            return 2
        return self.output_width


def _find(module: Any, names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if hasattr(module, name):
            return name, getattr(module, name)
    return None


def get_model(module: Any, path: Path) -> nn.Module:
    found = _find(module, MODEL_NAMES)
    if found is None:
        raise InputError(
            f"{path} defines no model. nndoctor looks for build_model() returning an nn.Module, "
            f"get_model(), or a module-level `model` instance; define one of them."
        )
    name, value = found
    model = call_user(path, name, value) if callable(value) and not isinstance(value, nn.Module) else value
    if not isinstance(model, nn.Module):
        raise InputError(f"{path}: {name} gave a {type(model).__name__}, not a torch.nn.Module. Return the model itself.")
    # A module-level instance is the user's object: keep our own copy so nothing we do reaches it.
    return copy.deepcopy(model) if name == "model" else model


def get_dataset(module: Any, path: Path, config: Config) -> Dataset:
    if config.data is not None:
        return dataspec.load(config.data, config.path or path)
    found = _find(module, DATASET_NAMES)
    if found is None:
        raise InputError(
            f"{path} defines no dataset. nndoctor looks for build_dataset() returning a "
            f"torch.utils.data.Dataset of (input, target) pairs, get_dataset(), or a module-level "
            f"`dataset`; or pass a data spec with --data SPEC.yaml."
        )
    name, value = found
    dataset = call_user(path, name, value) if callable(value) and not isinstance(value, Dataset) else value
    return dataset


def resolve_loss(module: Any, path: Path, config: Config, task: str | None) -> tuple[Any, str]:
    if config.loss is not None:
        return _named_object(torch.nn, config.loss, "loss", config.path), "config"
    loss = getattr(module, "loss_fn", None)
    if loss is not None:
        if isinstance(loss, type) and issubclass(loss, nn.Module):
            raise InputError(f"{path}: loss_fn is the class {loss.__name__}; assign an instance, e.g. loss_fn = {loss.__name__}().")
        if not callable(loss):
            raise InputError(f"{path}: loss_fn must be a callable (output, target) -> scalar tensor.")
        return loss, "model file"
    return None, "default"


def default_loss(task: str) -> nn.Module:
    if task == "classification":
        return nn.CrossEntropyLoss()
    if task in ("binary", "multilabel"):
        return nn.BCEWithLogitsLoss()
    return nn.MSELoss()


def resolve_optimizer(module: Any, path: Path, config: Config) -> tuple[Callable | None, str]:
    """The optimizer factory from the config or the model file; None when neither gives one
    (build_subject then asks a Lightning-style model, else uses Adam)."""
    if config.optimizer is not None:
        spec = config.optimizer if isinstance(config.optimizer, dict) else {"name": config.optimizer}
        spec = dict(spec)
        name = spec.pop("name", None)
        cls = getattr(torch.optim, str(name), None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise InputError(f"Config {config.path}: optimizer name {name!r} is not a torch.optim optimizer (e.g. Adam, SGD, AdamW).")
        factory = lambda params: cls(params, **spec)  # noqa: E731 - the factory nndoctor calls per copy
        try:  # the settings are the config's: a bad one is named there, not blamed on model.py
            factory([torch.nn.Parameter(torch.zeros(1))])
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"Config {config.path}: optimizer {name} rejects its settings {spec} ({type(exc).__name__}: {exc}). "
                f"Give each setting the type torch.optim.{name} expects (numbers for lr, betas as a list of two numbers)."
            ) from None
        return factory, f"config ({name} {spec})"
    factory = getattr(module, "build_optimizer", None)
    if factory is not None:
        if not callable(factory):
            raise InputError(f"{path}: build_optimizer must be a function taking the model's parameters.")
        return factory, "model file (build_optimizer)"
    return None, "default"


DEFAULT_OPTIMIZER_SOURCE = "default (Adam, lr=1e-3)"


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


def _named_object(namespace: Any, spec: Any, what: str, where: Path | None) -> Any:
    spec = spec if isinstance(spec, dict) else {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    cls = getattr(namespace, str(name), None)
    if not isinstance(cls, type):
        raise InputError(f"Config {where}: {what} name {name!r} is not in torch.nn (e.g. CrossEntropyLoss, MSELoss).")
    try:
        return cls(**spec)
    except TypeError as exc:
        raise InputError(f"Config {where}: {what} {name}: {exc}.") from None


def infer_task(loss: Any, target: Any, output: torch.Tensor) -> tuple[str, str]:
    """Task from the loss type first, then from the targets' dtype and values."""
    if isinstance(loss, CLASSIFICATION_LOSSES):
        return "classification", f"inferred from {type(loss).__name__}"
    if isinstance(loss, BINARY_LOSSES):
        width = output.shape[-1] if output.dim() > 1 else 1
        task = "multilabel" if width > 1 else "binary"
        return task, f"inferred from {type(loss).__name__} and output width {width}"
    if isinstance(loss, REGRESSION_LOSSES):
        return "regression", f"inferred from {type(loss).__name__}"
    if not isinstance(target, torch.Tensor):
        return "regression", "assumed (targets are not a tensor)"
    if not target.is_floating_point():
        return "classification", "inferred from integer targets"
    values = torch.unique(target)
    binary_values = bool(((values == 0) | (values == 1)).all())
    width = output.shape[-1] if output.dim() > 1 else 1
    if binary_values and width == 1:
        return "binary", "inferred from 0/1 targets and one output"
    if binary_values and target.dim() > 1 and target.shape[-1] == width and width > 1:
        return "multilabel", "inferred from 0/1 target vectors"
    return "regression", "inferred from float targets"


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {requested} was asked for, but CUDA is not available on this machine. Use --device cpu or auto.")
    return torch.device(requested)


def load_subject(
    model_path: Path,
    config: Config,
    device: str | None = None,
    seed: int | None = None,
) -> Subject:
    """Everything from a model file (and its config): the CLI's way in."""
    seed = config.seed if seed is None else seed
    torch.manual_seed(seed)
    module = import_model_file(model_path)
    path = module.__nndoctor_path__
    model = get_model(module, path)
    dataset = get_dataset(module, path, config)
    loss, loss_source = resolve_loss(module, path, config, config.task)
    make_optimizer, optimizer_source = resolve_optimizer(module, path, config)
    task = config.task or getattr(module, "task", None)
    penalty = getattr(module, "regularization", None)
    return build_subject(
        path, model, dataset, loss=loss, loss_source=loss_source, make_optimizer=make_optimizer,
        optimizer_source=optimizer_source, task=task, device=device or config.device, seed=seed,
        output_selector=config.output if config.output is not None else getattr(module, "output_key", None),
        penalty=penalty if callable(penalty) else None, data_where=_data_where(config, path),
        target_key=config.target_key, input_key=config.input_key,
    )


def _data_where(config: Config, model_path: Path) -> str:
    """How messages about the data name its source: the spec file, the config holding an inline
    spec, or the model file."""
    if isinstance(config.data, Path):
        return str(config.data)
    return f"Config {config.path} (data:)" if config.data is not None else str(model_path)


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def private_copy(model: nn.Module, keep_hooks: bool = False) -> nn.Module:
    """A deep copy for nndoctor to run and train, without the user's hooks unless asked."""
    model = copy.deepcopy(model)
    if not keep_hooks:
        remove_user_hooks(model)
    return model


def remove_user_hooks(model: nn.Module) -> None:
    """Drop the hooks the user registered on ``model`` (a copy): they log, save or change things,
    and nndoctor's hundreds of passes would fire them all. torch's own hooks stay (weight_norm,
    spectral_norm and pruning recompute weights in forward pre-hooks)."""
    for module in model.modules():
        for name in HOOK_DICTS:
            hooks = getattr(module, name, None)
            if hooks:
                for key in [k for k, hook in hooks.items() if not _from_torch(hook)]:
                    del hooks[key]


def _from_torch(hook: Any) -> bool:
    owner = getattr(hook, "__module__", None) or type(hook).__module__
    return owner.split(".")[0] == "torch"


def _usable_model(path: Path, model: nn.Module) -> None:
    """What every check relies on: trainable weights with data in them, and a model that can be
    copied (nndoctor never trains the user's own object)."""
    params = list(model.parameters())
    if not params:
        raise InputError(
            f"{path}: the model has no parameters, so there is nothing to train or check. Return the network "
            f"itself (with its layers as attributes), not a wrapper or a function."
        )
    if any(p.is_meta for p in params):
        raise InputError(
            f"{path}: the model's weights are on the meta device (shapes without data). Materialize them first "
            f"(model.to_empty(device='cpu') and initialize, or load a checkpoint)."
        )
    try:
        copy.deepcopy(model)
    except Exception as exc:  # a lock, an open file, a process handle held by the model
        raise InputError(
            f"{path}: nndoctor trains copies of the model and cannot copy this one (copy.deepcopy raised "
            f"{type(exc).__name__}: {exc}). Move what cannot be copied (locks, open files, connections) out of "
            f"the module, or give that attribute a __deepcopy__."
        ) from None


def build_subject(
    path: Path,
    model: nn.Module,
    dataset: Dataset,
    loss: Any = None,
    loss_source: str = "given",
    make_optimizer: Callable | torch.optim.Optimizer | None = None,
    optimizer_source: str = "given",
    task: str | None = None,
    device: str = "auto",
    seed: int = 0,
    output_selector: Any = None,
    penalty: Callable | None = None,
    data_where: str | None = None,
    target_key: str | None = None,
    input_key: str | None = None,
    keep_hooks: bool = False,
) -> Subject:
    """Validate the pieces against each other on a first batch and infer what was not given.

    ``make_optimizer`` is a factory (parameters -> optimizer) or an optimizer instance, rebuilt
    for nndoctor's copies (adapters.optimizer_factory). A Lightning-style model given without a
    loss or an optimizer supplies them (training_step, configure_optimizers); dict dataset items
    are split into inputs and target by ``target_key`` (adapters.dict_items)."""
    if not isinstance(model, nn.Module):
        raise InputError(f"{path}: the model is a {type(model).__name__}, not a torch.nn.Module.")
    model, compiled_note = adapters.uncompiled(model)
    where = data_where or str(path)
    _usable_model(path, model)
    if batching.dataset_size(dataset, where) < 2:
        raise InputError(
            f"{where}: the dataset holds a single sample. The checks compare samples and train on batches "
            f"(batch norm needs two or more): give at least 2 samples, and 50 for the overfit test."
        )
    dataset = adapters.dict_items(dataset, batching.raw_item(dataset, 0, where), target_key, input_key, where)
    first = batching.first_batch(dataset, where=where, size=8)
    run_device = pick_device(device)
    probe_model = private_copy(model, keep_hooks).to(run_device).eval()
    inputs, target = batching.to_device(first, run_device)
    output = _first_prediction(path, probe_model, inputs, output_selector)
    _train_mode_prediction(path, probe_model, inputs, output_selector)
    notes: list[str] = [compiled_note] if compiled_note else []
    if loss is None and adapters.is_lightning_like(model):
        loss, loss_source, input_is_target = adapters.training_step_loss(model, inputs, output, target, str(path))
        if input_is_target:  # an autoencoder-style step: it reconstructs its input
            dataset, target = adapters.InputAsTarget(dataset), inputs
            notes.append(f"{type(model).__name__}.training_step compares forward's output with the input: checked as "
                         f"a reconstruction (target = input).")
    if loss is None:
        own = tokens.model_loss(probe_model, inputs, target, lambda raw: batching.select_output(raw, output_selector))
        loss, loss_source = own if own is not None else (None, loss_source)
    make_optimizer, optimizer_source = _optimizer_factory(path, model, make_optimizer, optimizer_source, notes)
    if task is not None and task not in TASKS:
        raise InputError(f"{path}: task must be one of {', '.join(TASKS)}, not {task!r}.")
    if task is not None:
        task_source = "declared"
    else:
        task, task_source = infer_task(loss, target, output)
    if loss is None and task == "classification" and tokens.is_token_batch(output, target):
        loss = tokens.TokenCrossEntropy(tokens.TokenObjective(0, tokens.HF_IGNORE_INDEX, int(output.shape[-1])))
        loss_source = "default for token labels (cross-entropy at each position, labels -100 ignored)"
    if loss is None:
        loss = default_loss(task)
        loss_source = f"default for {task}"
    if isinstance(loss, tokens.TokenCrossEntropy):
        objective = loss.objective  # known, even where its value cannot tell (every label ignored: NaN)
    else:
        objective = tokens.recognise(loss, output, target) if task == "classification" else None
    subject = Subject(
        path=path,
        model=model,
        dataset=dataset,
        loss_fn=loss,
        make_optimizer=make_optimizer,
        task=task,
        task_source=task_source,
        device=run_device,
        seed=seed,
        output_width=int(output.shape[-1]) if output.dim() > 1 else 1,
        extra_penalty=penalty,
        output_selector=output_selector,
        notes=notes,
        loss_source=loss_source,
        optimizer_source=optimizer_source,
        keep_hooks=keep_hooks,
        token_objective=tokens.with_data(objective, inputs, target) if objective is not None else None,
    )
    _check_optimizer_builds(subject, probe_model)
    _check_loss_runs(subject, output, target)
    return subject


FORWARD_ADVICE = "Make the model accept the dataset's inputs, or fix the dataset's item shapes."
LIGHTNING_FORWARD_ADVICE = (
    "nndoctor calls forward for the predictions the checks examine: give the Lightning module a forward that returns them."
)


def _train_mode_prediction(path: Path, model: nn.Module, inputs: Any, output_selector: Any) -> None:
    """Training runs the model in train mode: a forward that only works in eval mode would make
    every training check crash, so it is refused here with the line that raises."""
    model.train()
    try:
        with torch.no_grad():
            batching.select_output(batching.call_model(model, inputs), output_selector)
    except Exception as exc:
        raise InputError(
            f"{path}: the model's forward raises in train mode (model.train()), though it runs in eval mode: "
            f"{type(exc).__name__}: {exc}. {user_frame(exc, path)}Training runs in train mode: make forward work there."
        ) from None
    finally:
        model.eval()


def _first_prediction(path: Path, model: nn.Module, inputs: Any, output_selector: Any) -> torch.Tensor:
    try:
        with torch.no_grad():
            raw_output = batching.call_model(model, inputs)
    except Exception as exc:
        missing_forward = isinstance(exc, NotImplementedError) and adapters.is_lightning_like(model)
        advice = LIGHTNING_FORWARD_ADVICE if missing_forward else FORWARD_ADVICE
        raise InputError(
            f"{path}: the model's forward raised {type(exc).__name__} on the first batch "
            f"(input {batching.describe(inputs)}): {exc}. {user_frame(exc, path)}{advice}"
        ) from exc
    try:
        return batching.select_output(raw_output, output_selector)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(
            f"{path}: cannot find the prediction in the model's output ({type(raw_output).__name__}): {exc}. "
            f"Set `output:` in nndoctor.yaml (a key, an index or an attribute such as logits)."
        ) from None


def _optimizer_factory(
    path: Path, model: nn.Module, given: Callable | torch.optim.Optimizer | None, source: str, notes: list[str]
) -> tuple[Callable, str]:
    """The factory the checks build optimizers with, and where it came from."""
    if isinstance(given, torch.optim.Optimizer):
        owned = {id(p) for p in model.parameters()}
        if owned and not any(id(p) in owned for group in given.param_groups for p in group["params"]):
            raise InputError(
                f"{path}: the optimizer instance holds none of the model's parameters (built for another "
                f"model, or before the model was rebuilt?), so as given it would not train this model. Build "
                f"it from this model's parameters, or pass a factory: lambda params: torch.optim.SGD(params, lr=0.1)."
            )
        described = adapters.describe_optimizer(given)
        return adapters.optimizer_factory(given, model.parameters()), f"{described}, given as an instance and rebuilt for each copy"
    if given is not None:
        return given, source
    if adapters.is_lightning_like(model):
        factory, source, lightning_notes = adapters.lightning_optimizer(model, str(path))
        notes.extend(lightning_notes)
        return factory, source
    return default_optimizer, DEFAULT_OPTIMIZER_SOURCE


def _check_optimizer_builds(subject: Subject, model: nn.Module) -> None:
    """The factory must build a torch optimizer over the parameters it is given: one that reaches
    for other parameters (the user's model, captured in a closure) would train the wrong model."""
    params = list(model.parameters())
    if not params:
        return
    try:
        optimizer = subject.make_optimizer(iter(params))
    except Exception as exc:
        raise InputError(
            f"{subject.path}: building the optimizer ({subject.optimizer_source}) raised {type(exc).__name__}: {exc}. "
            f"nndoctor calls it with each model copy's parameters: make it a function params -> torch.optim.Optimizer."
        ) from exc
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError(
            f"{subject.path}: the optimizer factory returned a {type(optimizer).__name__}, not a torch.optim.Optimizer. "
            f"Make it a function params -> optimizer, e.g. lambda params: torch.optim.SGD(params, lr=0.1)."
        )
    given = {id(p) for p in params}
    if not all(id(p) in given for group in optimizer.param_groups for p in group["params"]):
        raise InputError(
            f"{subject.path}: the optimizer factory built an optimizer over other parameters than the ones it "
            f"receives (your model's own, captured in a closure?), so nndoctor's copies would not train. Build it "
            f"from its argument: lambda params: torch.optim.SGD(params, lr=0.1)."
        )


def _check_loss_runs(subject: Subject, output: torch.Tensor, target: Any) -> None:
    """The loss must accept the model's output and the targets; report a mismatch as bad input
    unless it is one the data_integrity check explains (labels out of range, NaNs)."""
    try:
        value = subject.compute_loss(output, target)
    except Exception as exc:
        message = str(exc)
        if "out of bounds" in message or "Target" in message and "out of" in message:
            subject.notes.append(f"The loss rejected the first batch ({message}); see data_integrity.")
            return
        raise InputError(
            f"{subject.path}: the loss ({type(subject.loss_fn).__name__}) raised {type(exc).__name__} on the "
            f"first batch: {message}. Model output {tuple(output.shape)} {output.dtype}, target "
            f"{batching.describe(target)}. Make the loss, the output and the targets agree "
            f"(or declare `task:` if nndoctor inferred the wrong one: it is {subject.task}, {subject.task_source})."
        ) from exc
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise InputError(
            f"{subject.path}: the loss must return a scalar tensor, got "
            f"{batching.describe(value)}. Use reduction='mean' (or return loss.mean())."
        )
    if not math.isfinite(float(value.detach())):
        subject.notes.append("The loss on the first batch is not finite; see data_integrity and numerics.")
