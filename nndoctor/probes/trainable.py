"""Which parameters train: trainable vs frozen counts, PEFT adapters, and whether the loss reaches
any trainable parameter at all.

Fine-tuning freezes most of a model on purpose (a frozen backbone, LoRA adapters on a frozen base),
so frozen parameters are normal; what stops training is a setup where nothing trainable is left
("trainable params: 0" after freezing the wrapped model too), or where the loss does not depend on
what is trainable (reentrant gradient checkpointing with inputs that do not require grad: the
checkpointed blocks return outputs without a grad_fn, and torch warns "None of the inputs have
requires_grad=True").
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from nndoctor import training
from nndoctor.context import Context
from nndoctor.probes.step import step_batch_size

# A small batch: the question is only whether the loss has a gradient path, not its value.
BATCH = 8
# LoRA's B starts at zero, so A gets its first gradient at step 2 and moves then; one more step
# leaves room for an adapter behind another zero-initialized layer.
MOVE_STEPS = 3


@dataclass(frozen=True)
class Trainability:
    trainable_tensors: int
    frozen_tensors: int
    trainable_elements: int
    frozen_elements: int
    adapters: tuple[str, ...]  # names of PEFT adapter parameters (LoRA A/B, DoRA magnitudes), trainable or not
    loss_has_gradient: bool  # the loss on a batch depends on some trainable parameter
    warnings: tuple[str, ...]  # warnings the forward pass raised (torch's checkpoint warning among them)
    gradient_checkpointing: bool  # the model says it uses gradient checkpointing (Hugging Face models)

    @property
    def nothing_trains(self) -> bool:
        return self.trainable_tensors == 0 or not self.loss_has_gradient


def trainability(ctx: Context) -> Trainability:
    """Counts from the user's model and one forward pass of a fresh copy (through ctx.shared)."""
    model = ctx.subject.model
    named = list(model.named_parameters())
    trainable = [p for _, p in named if p.requires_grad]
    frozen = [p for _, p in named if not p.requires_grad]
    copy = ctx.subject.fresh_model()
    inputs, targets = ctx.batch(BATCH)
    ctx.seed_everything()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = ctx.subject.compute_loss(ctx.subject.predict(copy, inputs), targets)
    return Trainability(
        trainable_tensors=len(trainable), frozen_tensors=len(frozen),
        trainable_elements=sum(p.numel() for p in trainable), frozen_elements=sum(p.numel() for p in frozen),
        adapters=adapter_parameters(model), loss_has_gradient=bool(trainable) and loss.requires_grad,
        warnings=tuple(dict.fromkeys(str(w.message).splitlines()[0] for w in caught)),
        gradient_checkpointing=_checkpointing(model),
    )


def _checkpointing(model: nn.Module) -> bool:
    """Whether a Hugging Face model says it checkpoints activations (transformers 5 names it
    is_activation_checkpointing and deprecates is_gradient_checkpointing)."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = getattr(model, name, None)
        if isinstance(value, bool):
            return value
    return False


def adapter_parameters(model: nn.Module) -> tuple[str, ...]:
    """Parameter names of PEFT adapters, read from PEFT's own tuner layers (each declares its
    adapter sub-module names, e.g. LoRA's lora_A/lora_B); () when PEFT was never imported (a PEFT
    model cannot exist then, and importing it costs seconds)."""
    tuners = sys.modules.get("peft.tuners.tuners_utils")
    if tuners is None:
        return ()
    BaseTunerLayer = tuners.BaseTunerLayer
    names = []
    for path, module in model.named_modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        prefix = f"{path}." if path else ""
        for layer_name in module.adapter_layer_names:
            part = getattr(module, layer_name, None)
            if isinstance(part, (nn.ModuleDict, nn.ParameterDict)):
                names.extend(f"{prefix}{layer_name}.{name}" for name, _ in part.named_parameters())
    return tuple(names)



def adapter_movement(ctx: Context) -> dict[str, bool]:
    """Adapter parameter name -> whether MOVE_STEPS steps of the user's optimizer changed it, on a
    fresh copy against the user's unchanged weights: what "the adapters train" means, measured."""
    names = set(adapter_parameters(ctx.subject.model))
    model = ctx.subject.fresh_model()
    optimizer = training.make_optimizer(ctx, model)
    inputs, targets = ctx.batch(step_batch_size(ctx))
    ctx.seed_everything()
    for _ in range(MOVE_STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss = ctx.subject.compute_loss(ctx.subject.predict(model, inputs), targets)
        if not loss.requires_grad or not torch.isfinite(loss):
            break
        loss.backward()
        optimizer.step()
    before = dict(ctx.subject.model.named_parameters())
    return {
        name: not torch.equal(p.detach(), before[name].detach().to(p.device))
        for name, p in model.named_parameters() if name in names
    }
