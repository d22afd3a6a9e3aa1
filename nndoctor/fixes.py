"""--try-fixes: rerun the small overfit experiment with a cause's fix applied, on copies.

Advice is cheap; evidence is better. For each of the top likely causes that has an automatic fix,
the overfit run is repeated on a fresh copy with that fix (a lower or higher learning rate, the
final squashing activation removed and the fused loss used, default He/Kaiming re-initialization,
standardized inputs), and the cause records whether the fix makes the model memorize the samples.
Nothing here touches the user's objects or the main run's shared measurements.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor.context import Context
from nndoctor.probes.overfit import OverfitSettings, overfit
from nndoctor.result import Cause

TOP_CAUSES = 3
SQUASHING = {"softmax", "sigmoid", "tanh", "relu"}


@dataclass(frozen=True)
class Trial:
    """A fixed setup: a context whose subject carries the changed loss/optimizer, a model copy,
    and the batch to memorize."""

    label: str
    ctx: Context
    model: nn.Module
    inputs: Any
    targets: Any


FixMaker = Callable[[Context, Any, Any], list[Trial]]


def _with_subject(ctx: Context, **changes: Any) -> Context:
    # A separate Context: its NaN events and caches stay out of the main report.
    return Context(replace(ctx.subject, **changes), options=dict(ctx.options), specs=ctx.specs)


def _scaled_lr(ctx: Context, inputs: Any, targets: Any, factors: tuple[float, ...]) -> list[Trial]:
    trials = []
    for factor in factors:
        make = ctx.subject.make_optimizer

        def scaled(params, make=make, factor=factor):
            optimizer = make(params)
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * factor
            return optimizer

        verb = "lowering" if factor < 1 else "raising"
        scale = round(1 / factor) if factor < 1 else round(factor)
        trial_ctx = _with_subject(ctx, make_optimizer=scaled)
        trials.append(Trial(f"{verb} the learning rate {scale}x", trial_ctx, trial_ctx.subject.fresh_model(), inputs, targets))
    return trials


class _SkipLastSquashing(TorchFunctionMode):
    """Makes the n-th squashing call of a forward pass (softmax/sigmoid/tanh/relu, as modules or
    functions) return its input: the model then emits the logits its last layer computed."""

    def __init__(self, index: int):
        super().__init__()
        self.index, self.seen = index, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in SQUASHING:
            self.seen += 1
            if self.seen - 1 == self.index:
                return args[0]
        return func(*args, **kwargs)


class _Counter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SQUASHING:
            self.count += 1
        return func(*args, **(kwargs or {}))


class WithoutFinalActivation(nn.Module):
    """Wraps a model copy so that its last squashing activation is skipped in every forward."""

    def __init__(self, model: nn.Module, calls_per_forward: int):
        super().__init__()
        self.model, self.index = model, calls_per_forward - 1

    def forward(self, *args, **kwargs):
        with _SkipLastSquashing(self.index):
            return self.model(*args, **kwargs)


def _drop_final_activation(ctx: Context, inputs: Any, targets: Any) -> list[Trial]:
    subject = ctx.subject
    model = subject.fresh_model()
    counter = _Counter()
    with torch.no_grad(), counter:
        subject.predict(model, inputs)
    if counter.count == 0:
        return []
    fused = nn.CrossEntropyLoss() if subject.task == "classification" else nn.BCEWithLogitsLoss()
    if subject.task == "regression":
        fused = subject.loss_fn
    trial_ctx = _with_subject(ctx, loss_fn=fused)
    label = f"removing the final activation and using {type(fused).__name__}"
    return [Trial(label, trial_ctx, WithoutFinalActivation(model, counter.count), inputs, targets)]


def _reinitialize(ctx: Context, inputs: Any, targets: Any) -> list[Trial]:
    model = ctx.subject.fresh_model()
    ctx.seed_everything()
    for module in model.modules():
        if hasattr(module, "reset_parameters") and not isinstance(module, nn.modules.batchnorm._NormBase):
            module.reset_parameters()  # PyTorch defaults: Kaiming-uniform weights
    return [Trial("re-initializing with PyTorch's default He/Kaiming initialization", ctx, model, inputs, targets)]


def _standardize(ctx: Context, inputs: Any, targets: Any) -> list[Trial]:
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return []
    dims = [0] + list(range(2, inputs.dim())) if inputs.dim() > 2 else [0]
    mean = inputs.mean(dim=dims, keepdim=True)
    std = inputs.std(dim=dims, keepdim=True).clamp_min(1e-6)
    trial_ctx = _with_subject(ctx)
    return [Trial("standardizing the inputs", trial_ctx, trial_ctx.subject.fresh_model(), (inputs - mean) / std, targets)]


FIXES: dict[str, FixMaker] = {
    "lr_too_high": lambda ctx, x, y: _scaled_lr(ctx, x, y, (0.1, 0.01)),
    "lr_too_low": lambda ctx, x, y: _scaled_lr(ctx, x, y, (10.0, 100.0)),
    "softmax_before_ce": _drop_final_activation,
    "squashed_logits": _drop_final_activation,
    "sigmoid_bce": _drop_final_activation,
    "bounded_regression": _drop_final_activation,
    "bad_init": _reinitialize,
    "dead_relus": _reinitialize,
    "saturated_activations": _reinitialize,
    "vanishing_gradients": _reinitialize,
    "exploding_gradients": _reinitialize,
    "unnormalized_inputs": _standardize,
}


def _outcome(trial: Trial, settings: OverfitSettings) -> tuple[bool, str]:
    with contextlib.suppress(Exception):
        run = overfit(trial.ctx, trial.model, trial.inputs, trial.targets, settings)
        curve = run.curve
        if run.reached:
            return True, f"{trial.label}: overfit passes (loss {curve.initial:.3g} -> {curve.final:.3g} in {curve.steps} steps)"
        pattern = run.reading.pattern.label if run.reading else "not reached"
        return False, f"{trial.label}: overfit still fails ({pattern}, loss {curve.initial:.3g} -> {curve.final:.3g})"
    return False, f"{trial.label}: could not be applied to this model"


def try_fixes(ctx: Context, causes: tuple[Cause, ...]) -> tuple[Cause, ...]:
    settings = OverfitSettings.for_subject(ctx, ctx.thresholds("overfit_small_batch"))
    inputs, targets = ctx.batch(settings.samples)
    tried = []
    for rank, cause in enumerate(causes):
        maker = FIXES.get(cause.key)
        if rank >= TOP_CAUSES or maker is None:
            tried.append(cause)
            continue
        lines = []
        for trial in maker(ctx, inputs, targets):
            passed, line = _outcome(trial, settings)
            lines.append(line)
            if passed:
                break
        tried.append(replace(cause, tried_fix="; ".join(lines) or "no automatic fix applies to this model"))
    return tuple(tried)
