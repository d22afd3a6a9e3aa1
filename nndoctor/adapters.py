"""Adapters: models, data and optimizers written for other tools, examined without rewriting them.

* **Optimizer instances.** nndoctor trains copies of the model, so it needs an optimizer *factory*;
  ``optimizer_factory`` rebuilds an equivalent optimizer (same class, same per-group settings) for
  any copy from an optimizer the user already built.
* **Lightning-style modules**, recognised by duck typing (a ``training_step`` and a
  ``configure_optimizers``; Lightning itself need not be installed). The optimizer comes from
  ``configure_optimizers()`` (``lightning_optimizer``). The loss comes from ``training_step``
  (``training_step_loss``): the checks compute ``predict()`` and then ``compute_loss(output,
  target)``, so the training step is run with the module's forward answering the given output.
  That is exactly the loss when ``training_step`` gets its prediction from ``self(x)`` or
  ``self.forward(x)``, which is verified on the first batch (the step's own loss must match); a
  step that computes its prediction another way (``self.encoder(x)``) is refused with a message
  asking for ``loss_fn``. A self-supervised step that compares forward's output with the *input*
  (an autoencoder's ``F.mse_loss(self(x), x)``) is recognised on the first batch and checked as a
  reconstruction: the loss is that standard loss, the target the input (``InputAsTarget``).
* **torch.compile'd models** (``OptimizedModule``): the checks examine the original module
  (``_orig_mod``, the same parameters), uncompiled (``uncompiled``). Compiled and eager forward
  compute the same function; compiling each of the checks' copies would cost minutes and flood the
  terminal with dynamo's recompilation warnings.
* **Dict items** (Hugging Face style ``{"input_ids": ..., "attention_mask": ..., "labels": ...}``):
  ``DictItems`` presents them as (inputs, target) pairs, the inputs going to the model as keyword
  arguments.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import Dataset

from nndoctor.errors import InputError

# Per-group keys that describe the parameters rather than how to train them.
_GROUP_IDENTITY_KEYS = ("params", "param_names", "initial_lr")
DEFAULT_TARGET_KEYS = ("labels", "label")  # Hugging Face names, "labels" first as its Trainer uses


# --- optimizers ---------------------------------------------------------------------------------


def optimizer_factory(optimizer: torch.optim.Optimizer, parameters: Iterable[torch.Tensor]) -> Callable:
    """A factory building ``optimizer``'s equivalent for a copy of the model it was built for.

    ``parameters`` are that model's parameters, in ``model.parameters()`` order. Given a copy's
    parameters (same count and shapes), the factory rebuilds every parameter group with its own
    settings (a smaller LR for a backbone, no weight decay on biases; parameters left out of the
    optimizer stay out); given anything else it falls back to ``type(optimizer)(params,
    **optimizer.defaults)``. Optimizer state (momentum) is not carried over: the checks start from
    initialization. A scheduled group's base LR and the momentum the schedule pairs with it
    (``scheduled_settings``) are taken as its settings, so a warm-up that starts at 0 does not
    freeze the checks' training runs, and the fallback and ``describe_optimizer`` use the same
    values: the LR and momentum called "configured" are one value each, everywhere.
    """
    cls, defaults = type(optimizer), _configured(optimizer)
    # Some defaults are not constructor arguments (AdamW's decoupled_weight_decay): every setting
    # travels in the parameter groups, the constructor gets those it accepts.
    arguments = _constructor_arguments(cls, defaults)
    reference = list(parameters)
    position = {id(p): i for i, p in enumerate(reference)}
    shapes = [p.shape for p in reference]
    groups = [([position.get(id(p)) for p in group["params"]], _group_settings(group)) for group in optimizer.param_groups]
    lines_up = all(i is not None for indices, _ in groups for i in indices)

    def build(params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        params = list(params)
        if lines_up and [p.shape for p in params] == shapes:
            return cls([{"params": [params[i] for i in indices], **settings} for indices, settings in groups], **arguments)
        return cls([{"params": params, **defaults}], **arguments)

    return build


def _constructor_arguments(cls: type, defaults: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return dict(defaults)
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(defaults)
    return {k: v for k, v in defaults.items() if k in parameters}


def _group_settings(group: Mapping[str, Any]) -> dict[str, Any]:
    settings = {k: v for k, v in group.items() if k not in _GROUP_IDENTITY_KEYS}
    return {**settings, **scheduled_settings(group)}


def scheduled_settings(group: Mapping[str, Any]) -> dict[str, Any]:
    """What a scheduler attached to this group is built around, {} without one.

    The LR: OneCycleLR's peak (``max_lr``; its ``initial_lr`` is the warm-up's start, max_lr / 25),
    else the LR the scheduler found on the group (``initial_lr``: a LambdaLR warm-up scales it
    from 0). The momentum: OneCycleLR cycles it (``base_momentum``) and pairs its peak LR with its
    lowest momentum, but has already written its highest into the group; without this, a copy
    would train at the peak LR with the highest momentum, a pair the schedule never applies.
    (CyclicLR's group starts at its lowest LR with its highest momentum: a pair it applies.)"""
    settings: dict[str, Any] = {}
    for key in ("max_lr", "initial_lr"):
        value = group.get(key)
        if isinstance(value, (int, float)):
            settings["lr"] = float(value)
            break
    momentum = group.get("base_momentum")
    if isinstance(group.get("max_lr"), (int, float)) and isinstance(momentum, (int, float)):
        if "momentum" in group:
            settings["momentum"] = float(momentum)
        elif isinstance(group.get("betas"), tuple):
            settings["betas"] = (float(momentum), *group["betas"][1:])
    return settings


def _configured(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's defaults, with the first group's scheduled settings where a scheduler set them."""
    scheduled = scheduled_settings(optimizer.param_groups[0]) if optimizer.param_groups else {}
    return {**optimizer.defaults, **scheduled}


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """'SGD (lr=0.1, momentum=0.9)': the settings that differ between optimizers' usual uses."""
    shown = ("lr", "momentum", "betas", "weight_decay")
    configured = _configured(optimizer)
    settings = ", ".join(f"{k}={configured[k]}" for k in shown if k in configured)
    return f"{type(optimizer).__name__} ({settings})"


# --- torch.compile ---------------------------------------------------------------------------


def uncompiled(model: nn.Module) -> tuple[nn.Module, str | None]:
    """(the module torch.compile wrapped, a note) for a compiled model; (model, None) otherwise.
    The original module holds the very same parameters, so an optimizer built for the compiled
    model lines up with it."""
    original = getattr(model, "_orig_mod", None)
    if not isinstance(original, nn.Module):  # checked first: torch._dynamo is slow to import
        return model, None
    from torch._dynamo.eval_frame import OptimizedModule

    if not isinstance(model, OptimizedModule):
        return model, None
    return original, (
        f"The model is torch.compile'd: the checks examine its original module ({type(original).__name__}, "
        f"model._orig_mod), uncompiled; compiled and eager forward compute the same function."
    )


# --- Lightning-style modules --------------------------------------------------------------------


def is_lightning_like(model: Any) -> bool:
    """A LightningModule, or anything shaped like one: it knows its training step and optimizer."""
    return callable(getattr(model, "training_step", None)) and callable(getattr(model, "configure_optimizers", None))


def lightning_optimizer(module: nn.Module, where: str) -> tuple[Callable, str, list[str]]:
    """(factory, source, notes) from ``configure_optimizers()``, called on a copy of the module.

    Every form Lightning accepts is read: an optimizer, a list of them, a dict with "optimizer",
    a list of such dicts, or (optimizers, schedulers). The first optimizer is used; schedulers are
    ignored (the checks run at the base learning rate), which the notes say.
    """
    owner = copy.deepcopy(module)
    name = type(module).__name__
    try:
        configured = owner.configure_optimizers()
    except Exception as exc:
        raise InputError(
            f"{where}: {name}.configure_optimizers() raised {type(exc).__name__}: {exc}. It runs without a "
            f"Trainer here (self.trainer is not set); pass an optimizer factory instead (optimizer=... in the "
            f"Python API, build_optimizer(params) in model.py, or optimizer: in nndoctor.yaml)."
        ) from exc
    leaves = list(_leaves(configured))
    optimizers = [x for x in leaves if isinstance(x, torch.optim.Optimizer)]
    if not optimizers:
        raise InputError(
            f"{where}: {name}.configure_optimizers() returned {type(configured).__name__}, which holds no "
            f"torch.optim.Optimizer. Return one (or pass an optimizer factory to nndoctor)."
        )
    first = optimizers[0]
    notes = []
    if len(optimizers) > 1:
        notes.append(f"{name}.configure_optimizers() returned {len(optimizers)} optimizers; the checks use the first.")
    if any(isinstance(x, (LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)) for x in leaves):
        notes.append(f"{name}'s LR scheduler is not applied: the checks train at the base learning rate.")
    source = f"{name}.configure_optimizers(): {describe_optimizer(first)}"
    return optimizer_factory(first, owner.parameters()), source, notes


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class TrainingStepLoss:
    """``loss_fn(output, target)`` computed by a Lightning-style module's ``training_step``.

    The step runs on a private copy of the module whose forward returns ``output`` whatever it is
    given, with the batch ``(output, target)``: a step that does ``x, y = batch; loss =
    F.cross_entropy(self(x), y)`` computes ``F.cross_entropy(output, target)``. The batch's input
    is the output tensor itself so that reshapes such as ``x.view(x.size(0), -1)`` still work.
    """

    def __init__(self, module: nn.Module, device: torch.device):
        self.module = copy.deepcopy(module).to(device)
        self.__name__ = f"{type(module).__name__}.training_step"
        step = self.module.training_step
        self._takes_index = _positional_count(step) >= 2

    def __call__(self, output: torch.Tensor, target: Any) -> torch.Tensor:
        self.module.forward = lambda *args, **kwargs: output
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Lightning warns that self.log() has no Trainer
                batch = (output, target)
                result = self.module.training_step(batch, 0) if self._takes_index else self.module.training_step(batch)
        finally:
            del self.module.forward  # back to the class's forward; drop the reference to output
        return _loss_of(result, self.__name__)


def _positional_count(function: Callable) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def _loss_of(result: Any, name: str) -> torch.Tensor:
    if isinstance(result, torch.Tensor):
        return result
    if isinstance(result, Mapping) and isinstance(result.get("loss"), torch.Tensor):
        return result["loss"]
    raise TypeError(f"{name} returned {type(result).__name__}, not the loss tensor or a dict with 'loss'")


def training_step_loss(module: nn.Module, inputs: Any, output: torch.Tensor, target: Any, where: str) -> tuple[Callable, str, bool]:
    """(loss_fn, source, input_is_target) for a Lightning-style module given without a loss,
    verified on the first batch: the step's loss must depend on forward's output and on no
    parameter directly, and must equal the step's own loss on the real batch. When the module holds
    a torch loss (``self.criterion = nn.CrossEntropyLoss()``) that gives the same value, that loss
    itself is returned, so that the checks which know the standard losses can use it.

    A self-supervised step (an autoencoder: ``loss = F.mse_loss(self(x), x)``) compares forward's
    output with the input, not the target: when the step's real loss equals a standard loss (or
    the module's own) between forward's output and the input, that loss is returned with
    ``input_is_target`` set, and the checks train the model to reproduce its input."""
    loss_fn = TrainingStepLoss(module, output.device)
    prediction = output.detach().clone().requires_grad_(True)
    refusal = (
        f"{where}: nndoctor takes the loss from {loss_fn.__name__}, running it with forward's output as "
        f"the prediction, and that works when training_step gets its prediction from self(x) or "
        f"self.forward(x). Pass the loss instead: loss_fn=... in the Python API, loss_fn in model.py, "
        f"or loss: in nndoctor.yaml."
    )
    real = _real_step_loss(module, inputs, target, output.device)
    reconstruction = _reconstruction_criterion(module, inputs, output.detach(), real)
    if reconstruction is not None:
        name, criterion = reconstruction
        return ReconstructionLoss(criterion), f"{name} between forward's output and the input, as {loss_fn.__name__} computes it", True
    try:
        loss = loss_fn(prediction, target)
    except Exception as exc:
        raise InputError(f"{refusal} Here training_step raised {type(exc).__name__}: {exc}.") from exc
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
        raise InputError(f"{refusal} Here its loss does not depend on forward's output.")
    trainable = [(name, p) for name, p in loss_fn.module.named_parameters() if p.requires_grad]
    gradients = torch.autograd.grad(loss, [prediction, *(p for _, p in trainable)], allow_unused=True)
    reached = [name for (name, _), g in zip(trainable, gradients[1:]) if g is not None]
    if gradients[0] is None or reached:
        detail = f"it also uses {', '.join(reached[:3])} directly" if reached else "its loss does not depend on forward's output"
        raise InputError(f"{refusal} Here {detail}.")
    if real is not None and not torch.allclose(loss.detach(), real, rtol=1e-4, atol=1e-6):
        raise InputError(
            f"{refusal} Here training_step's own loss on the first batch ({float(real):.4g}) differs from its loss "
            f"of forward's output ({float(loss.detach()):.4g})."
        )
    loss_fn.module.requires_grad_(False)  # the copy only computes losses: no gradients to keep
    criterion = _matching_criterion(loss_fn.module, prediction.detach(), target, loss.detach())
    if criterion is not None:
        name, module_loss = criterion
        return module_loss, f"{type(module).__name__}.{name}, which {loss_fn.__name__} applies", False
    return loss_fn, "Lightning-style training_step, fed forward's output", False


def _real_step_loss(module: nn.Module, inputs: Any, target: Any, device: torch.device) -> torch.Tensor | None:
    """training_step's loss on the real batch (a copy in eval mode, as forward's output was
    computed), or None when the step cannot run outside a Trainer."""
    owner = copy.deepcopy(module).to(device).eval()
    step = owner.training_step
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning warns that self.log() has no Trainer
            batch = (inputs, target)
            result = step(batch, 0) if _positional_count(step) >= 2 else step(batch)
        loss = _loss_of(result, "training_step")
    except Exception:
        return None
    return loss.detach() if loss.numel() == 1 else None


# Losses a reconstruction objective is written with, tried after the module's own loss modules.
RECONSTRUCTION_LOSSES = (nn.MSELoss(), nn.L1Loss(), nn.SmoothL1Loss(), nn.BCEWithLogitsLoss(), nn.BCELoss())


def _reconstruction_criterion(module: nn.Module, inputs: Any, output: torch.Tensor, real: torch.Tensor | None) -> tuple[str, nn.Module] | None:
    """(name, loss) when the step's real loss is that loss between forward's output and the input."""
    if real is None or not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.numel() != output.numel():
        return None
    reference = inputs.reshape(output.shape).to(output.dtype)
    own = [(f"{type(module).__name__}.{name}", child) for name, child in module.named_children() if isinstance(child, nn.modules.loss._Loss)]
    for name, criterion in [*own, *((type(c).__name__, c) for c in RECONSTRUCTION_LOSSES)]:
        try:
            value = criterion(output, reference)
        except Exception:  # e.g. BCELoss on values outside [0, 1]
            continue
        if value.numel() == 1 and torch.allclose(value, real.to(value.dtype), rtol=1e-4, atol=1e-6) and float(real) != 0:
            return name, criterion
    return None


class ReconstructionLoss:
    """``criterion(output, input)`` for a self-supervised objective: the dataset's target is the
    input itself (InputAsTarget), reshaped to the output's shape as the step flattens it."""

    def __init__(self, criterion: nn.Module):
        self.criterion = criterion
        self.__name__ = f"{type(criterion).__name__} against the input"

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(output, target.reshape(output.shape).to(output.dtype))


class InputAsTarget(Dataset):
    """(input, input) pairs from (input, anything) items: the target of a reconstruction objective."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        inputs = self.dataset[index][0]
        return inputs, inputs


def _matching_criterion(module: nn.Module, output: torch.Tensor, target: Any, value: torch.Tensor) -> tuple[str, nn.Module] | None:
    for name, child in module.named_children():
        if not isinstance(child, nn.modules.loss._Loss):
            continue
        try:
            same = bool(torch.allclose(child(output, target), value))
        except Exception:  # a loss for another head or shape: not the one the step applies here
            continue
        if same:
            return name, child
    return None


# --- dict items ---------------------------------------------------------------------------------


class DictItems(Dataset):
    """A dataset of dict items seen as (inputs, target) pairs.

    The target is ``item[target_key]``; the inputs are the remaining keys (the model receives them
    as keyword arguments, ``model(input_ids=..., attention_mask=...)``) or, with ``input_key``,
    that single value. Lists of numbers become tensors, so a Hugging Face dataset works without
    ``set_format("torch")`` (sequences must still share one length: pad to a fixed length).
    """

    def __init__(self, dataset: Dataset, target_key: str, input_key: str | None = None):
        self.dataset = dataset
        self.target_key = target_key
        self.input_key = input_key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        item = self.dataset[index]
        if not isinstance(item, Mapping) or self.target_key not in item:
            raise KeyError(f"item {index} is not a dict with the key {self.target_key!r}, as item 0 is")
        target = _as_tensor(item[self.target_key])
        if self.input_key is not None:
            return _as_tensor(item[self.input_key]), target
        return {k: _as_tensor(v) for k, v in item.items() if k != self.target_key}, target


def _as_tensor(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        try:
            return torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            return value
    return value


def dict_items(dataset: Dataset, first: Any, target_key: str | None, input_key: str | None, where: str) -> Dataset:
    """``dataset`` adapted when its items are dicts; unchanged otherwise (keys set for tuple items
    are an error, not silently ignored)."""
    if not isinstance(first, Mapping):
        if target_key is not None or input_key is not None:
            raise InputError(
                f"{where}: target_key/input_key are set, but dataset items are {type(first).__name__}s, not dicts. "
                f"Remove them, or make __getitem__ return a dict."
            )
        return dataset
    keys = ", ".join(map(str, first))
    if target_key is None:
        target_key = next((k for k in DEFAULT_TARGET_KEYS if k in first), None)
    if target_key is None or target_key not in first:
        asked = f"has no {target_key!r}" if target_key else "has no 'labels' or 'label'"
        raise InputError(
            f"{where}: dataset items are dicts ({keys}) and the item {asked}. Say which key holds the "
            f"target: target_key: in nndoctor.yaml, or target_key=... in the Python API."
        )
    if input_key is not None and input_key not in first:
        raise InputError(f"{where}: input_key {input_key!r} is not a key of the dataset's items ({keys}).")
    return DictItems(dataset, target_key, input_key)
