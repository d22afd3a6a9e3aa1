"""What `nndoctor run` saw the user's own training loop do: frozen records, no torch, no judging.

The observer (nndoctor/observer.py) fills these in while the script runs; the loop checks read
them the way other checks read probes. Values are plain Python numbers and names so that a trace
can be kept, compared and printed after the script and its tensors are gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# The loop checks' skip reason when nndoctor examined a model file and never saw a loop.
NOT_OBSERVED = "no training loop was observed: run `nndoctor run train.py` to check your real training loop"


@dataclass(frozen=True)
class Step:
    """One optimizer step, and what happened since the same optimizer's previous step."""

    number: int  # 1-based, counting every optimizer's steps in the order they ran
    optimizer: str  # OptimizerInfo.name
    lrs: tuple[float, ...]  # the learning rate of each parameter group, as applied by this step
    losses: tuple[float, ...]  # the values backpropagated since the previous step (any optimizer's)
    backward_passes: int | None  # backward passes that reached this optimizer's parameters (None: not yet watched)
    grads_reset: bool | None  # whether some backward pass since the previous step found the gradient reset (None/zeros)
    grad_norm_backward: float | None  # total gradient norm of its parameters right after the last backward pass
    grad_norm_step: float | None  # ... and when the step applied it (after any clipping); both sampled (None between)
    time_s: float  # seconds since the previous step of any optimizer

    @property
    def clip_ratio(self) -> float | None:
        """How much of the gradient reached the step: 1.0 unclipped, 0.01 shrunk 100x."""
        if not self.grad_norm_backward or self.grad_norm_step is None:
            return None
        return self.grad_norm_step / self.grad_norm_backward


@dataclass(frozen=True)
class OptimizerInfo:
    name: str  # "Adam" (or "Adam#2" when several of one class)
    cls: str
    groups: tuple[Mapping[str, Any], ...]  # hyperparameters per group at the first step (no params)
    tensors: int  # parameter tensors it holds
    parameters: int  # elements in them
    model: str  # ModelInfo.name of the model whose parameters it holds ("" if none seen in a forward)
    schedulers: tuple[str, ...] = ()  # LR scheduler classes attached to it


@dataclass(frozen=True)
class ModelInfo:
    name: str  # the class name (with #n when several of one class)
    cls: str
    parameters: int
    trainable: int  # elements with requires_grad
    optimizers: tuple[str, ...]


@dataclass(frozen=True)
class ModeUse:
    """A mode-dependent module (dropout, batch norm) and its mode at the observed steps (sampled)."""

    module: str  # qualified name: "Model.features.3"
    kind: str  # "dropout" or "batchnorm"
    p: float | None  # dropout probability
    train_steps: int
    eval_steps: int
    trained: bool  # its own parameters (batch norm with affine) or its parent's are being trained


@dataclass(frozen=True)
class LossCall:
    name: str  # "CrossEntropyLoss" or "cross_entropy"
    kind: str  # "module" or "function"
    line: str  # "train.py:42: loss = criterion(out, y)", "" when not called from the script


@dataclass(frozen=True)
class NonFiniteSeen:
    step: int  # the optimizer step (1-based) whose loss or gradient first was NaN/Inf
    kind: str  # "loss", "gradient"
    where: str  # the first module whose output was NaN/Inf in the next forward pass ("" if unknown)


@dataclass(frozen=True)
class Coverage:
    unheld_with_grad: tuple[str, ...] = ()  # parameters that received gradients no optimizer holds
    stale: Mapping[str, int] = field(default_factory=dict)  # optimizer -> tensors no forward pass used
    frozen_output: tuple[str, ...] = ()  # output layers frozen while earlier layers train


@dataclass(frozen=True)
class LoopTrace:
    script: str
    args: tuple[str, ...]
    steps: tuple[Step, ...]
    optimizers: tuple[OptimizerInfo, ...]
    models: tuple[ModelInfo, ...]
    modes: tuple[ModeUse, ...]
    coverage: Coverage
    losses: tuple[LossCall, ...]
    nonfinite: NonFiniteSeen | None
    stop_reason: str  # "steps", "time_budget", "finished", "error", "interrupted"
    batches_taken: int
    samples_taken: int
    wall_s: float
    error: str = ""  # the script's own error when it raised after some steps
    feeds: tuple[tuple[str, str], ...] = ()  # (model, model): the first model's output was an input of the second

    def steps_of(self, optimizer: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.optimizer == optimizer)

    @property
    def stopped_early(self) -> bool:
        """nndoctor ended the script (it would have gone on training)."""
        return self.stop_reason in ("steps", "time_budget", "interrupted")
