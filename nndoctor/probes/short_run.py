"""A short run of the user's training setup, and the model's predictions before and after it.

The copy of the model trains as the user's would: their loss and optimizer, dropout and weight
decay left on, shuffled mini-batches drawn from a few hundred samples. Collapse onto one class
and softmax saturation (seeds 000, 001, 003) appear early in such a run when they come from the
setup itself (a softmax before the loss, a learning rate far too high, an extreme initial bias).

The run stops early once the model fits its labels: after at least MIN_STEPS steps, every
mini-batch of the latest epoch classified right. A model whose predictions match diverse labels
has not collapsed, and the predictions after the run are judged either way; the shortcut only
spares the remaining steps of the sound runs, which are the ones that fit.

Predictions are taken as the loss sees them during training: in train mode (normalization layers
use batch statistics), but with the layers that drop units randomly switched off, so that what is
measured is the model and not the noise.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor import batching
from nndoctor.context import Context
from nndoctor.probes import cost
from nndoctor.training import Curve, dropout_off, fit, make_optimizer

PHASE = "short training run"
NORMALIZERS = ("softmax", "log_softmax")
# Never stop before this many steps: the numerics check reuses this run in place of its own
# 20-step run of the configured setup, so it must watch at least as many passes.
MIN_STEPS = 20


@dataclass(frozen=True)
class ShortRunSettings:
    """The run's knobs; hashable so that ``ctx.shared`` caches one run per setting."""

    samples: int = 256
    steps: int = 60
    batch_size: int = 32

    @classmethod
    def for_subject(cls, ctx: Context, thresholds: Mapping[str, Any]) -> "ShortRunSettings":
        """The catalog's settings, with fewer steps (at least MIN_STEPS) for a compute-heavy model
        so that the run stays within ``flop_budget``."""
        settings = cls(**{f.name: int(thresholds[f.name]) for f in fields(cls) if f.name in thresholds})
        if "flop_budget" not in thresholds:
            return settings
        steps = cost.steps_within_flops(
            ctx, float(thresholds["flop_budget"]), settings.batch_size, most=settings.steps, least=MIN_STEPS,
        )
        return replace(settings, steps=steps)


@dataclass(frozen=True)
class Predictions:
    output: torch.Tensor  # the prediction tensor on every sample (detached)
    logits: torch.Tensor | None  # the softmax's input when the model itself ends in a (log-)softmax


@dataclass(frozen=True)
class ShortRun:
    settings: ShortRunSettings
    curve: Curve
    targets: Any
    initial: Predictions
    final: Predictions | None  # None when the loss turned non-finite (the numerics check says where)


def short_run(ctx: Context, settings: ShortRunSettings) -> ShortRun:
    inputs, targets = ctx.batch(settings.samples)
    model = ctx.subject.fresh_model()
    ctx.seed_everything()
    initial = predictions(ctx, model, inputs)
    optimizer = make_optimizer(ctx, model)
    epoch = max(1, batching.batch_size_of(inputs) // settings.batch_size)
    curve = fit(ctx, model, inputs, targets, settings.steps, optimizer, PHASE, goal=_fits_labels(epoch), batch_size=settings.batch_size)
    final = predictions(ctx, model, inputs) if curve.nonfinite_step is None else None
    return ShortRun(settings, curve, targets, initial, final)


def _fits_labels(epoch: int) -> Callable[[float, float | None], bool]:
    """A goal for ``fit``, called once per step: at least MIN_STEPS steps taken, and the latest
    ``epoch`` mini-batches all classified right (accuracy 1.0; never for regression)."""
    accuracies: collections.deque[float | None] = collections.deque(maxlen=epoch)
    calls = 0

    def goal(loss: float, accuracy: float | None) -> bool:
        nonlocal calls
        calls += 1
        accuracies.append(accuracy)
        return calls > MIN_STEPS and len(accuracies) == epoch and all(a == 1.0 for a in accuracies)

    return goal


class _SoftmaxInput(TorchFunctionMode):
    """Remembers the input and result of the latest softmax / log_softmax call, whether made by an
    nn.Softmax layer or in forward code: the logits behind a model that emits probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: tuple[torch.Tensor, torch.Tensor] | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if getattr(func, "__name__", "") in NORMALIZERS and isinstance(result, torch.Tensor):
            self.latest = (args[0] if args else kwargs["input"], result)
        return result


def predictions(ctx: Context, model: nn.Module, inputs: Any) -> Predictions:
    """The model's prediction on ``inputs`` in train mode with dropout off (see above)."""
    with torch.no_grad(), dropout_off(model), _SoftmaxInput() as recorder:
        output = ctx.subject.predict(model, inputs)
    latest = recorder.latest
    logits = latest[0].detach() if latest is not None and latest[1] is output else None
    return Predictions(output.detach(), logits)
