"""Run a training script in-process, exactly as `python train.py ARGS`, and record its loop.

Everything is observed through torch's own global instruments, so the script needs no change:
module forward (pre-)hooks for the models, their batches, mode-dependent modules and loss modules;
optimizer step pre/post hooks for the steps; a TorchFunctionMode for ``Tensor.backward`` and
functional losses; one gradient hook per optimizer (on a sentinel parameter) that counts backward
passes and sees whether gradients were reset. It records and never judges. After ``steps``
optimizer steps (or ``time_budget`` seconds) a private BaseException raised from the step
post-hook unwinds the script, so its own ``finally`` blocks run, and the runner catches it.
Per-step costs are a few scalar reads (the losses, two gradient norms), not per-layer syncs.
"""

from __future__ import annotations

import contextlib
import copy
import math
import runpy
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from torch.overrides import TorchFunctionMode

from nndoctor.errors import InputError
from nndoctor.loop import (
    Coverage,
    LoopTrace,
    LossCall,
    ModelInfo,
    ModeUse,
    NonFiniteSeen,
    OptimizerInfo,
    Step,
)

DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)
NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)
LOSS_FUNCTIONS = {
    F.cross_entropy, F.nll_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
    F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.kl_div,
}
BACKWARD_FUNCTIONS = {torch.Tensor.backward, torch.autograd.backward}
WATCHED_FUNCTIONS = frozenset(LOSS_FUNCTIONS | BACKWARD_FUNCTIONS)
COVERAGE_STEPS = 3  # per optimizer: parameter coverage is read on its first steps (a walk over all parameters)
NORM_FIRST, NORM_EVERY = 10, 5  # gradient norms (two passes over the gradients) on these steps
CAPTURE_SAMPLES = 512  # samples of the script's own batches kept for the checklist
CAPTURE_BATCHES = 64
RECENT_OUTPUTS = 8  # root outputs remembered to recognise one model feeding another


class StopScript(BaseException):
    """Raised from a hook to end the script once enough was observed (not an Exception, so the
    script's own `except Exception` cannot swallow it; its `finally` blocks still run)."""


@dataclass
class CapturedBatch:
    args: tuple
    kwargs: dict
    target: Any = None
    model_id: int = 0


@dataclass
class Observation:
    """What one observed run left: the trace, plus the live pieces the checklist is built from."""

    trace: LoopTrace
    models: dict[str, nn.Module]  # ModelInfo.name -> a copy taken before its first optimizer step
    optimizers: dict[str, torch.optim.Optimizer]  # the script's own (for their classes and groups)
    loss_fn: Any  # the loss module (a copy) or function the script applied, None if not seen
    batches: dict[str, list[CapturedBatch]]  # per model name: its forward inputs and the loss targets
    originals: dict[str, nn.Module]  # the script's own models (trained now): their parameters' order maps optimizer groups


@dataclass
class _OptimizerState:
    info_name: str
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    steps: int = 0
    backward_passes: int = 0
    reset_seen: bool | None = None
    norm_after_backward: Any = None
    watched: bool = False
    groups: tuple = ()  # hyperparameters per group at the first step


@dataclass
class _ModeCount:
    module: Any
    train: int = 0
    eval: int = 0


@dataclass
class _Recorder:
    script: Path
    max_steps: int
    time_budget: float | None
    start: float = field(default_factory=time.perf_counter)
    depth: int = 0
    roots: dict[int, nn.Module] = field(default_factory=dict)
    last_root: int = 0
    modes: dict[int, _ModeCount] = field(default_factory=dict)
    optimizers: dict[int, _OptimizerState] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    pending_losses: list[torch.Tensor] = field(default_factory=list)
    last_step_time: float = field(default_factory=time.perf_counter)
    losses: dict[str, LossCall] = field(default_factory=dict)
    loss_fn: Any = None
    batches: list[CapturedBatch] = field(default_factory=list)
    samples: int = 0
    model_copies: dict[int, nn.Module] = field(default_factory=dict)
    awaiting_copy: set[int] = field(default_factory=set)  # parameters of optimizers about to take their first step
    unheld: set[str] = field(default_factory=set)
    stale: dict[str, int] = field(default_factory=dict)
    frozen_output: set[str] = field(default_factory=set)
    feeds: set[tuple[int, int]] = field(default_factory=set)  # (root id, root id): the first's output went into the second
    _recent_outputs: dict[int, int] = field(default_factory=dict)  # data pointer of a root's output -> root id
    nonfinite: NonFiniteSeen | None = None
    hunting_nonfinite: bool = False
    first_bad_module: str = ""
    handles: list[Any] = field(default_factory=list)

    # -- forward passes -------------------------------------------------------------------------
    def forward_pre(self, module: nn.Module, args: tuple) -> None:
        if torch.compiler.is_compiling():  # inside a compiled model: a no-op, so dynamo neither guards on nor recompiles for it
            return
        grad = torch.is_grad_enabled()
        if self.depth == 0 and grad and not isinstance(module, nn.modules.loss._Loss):
            self._note_feeds(module, args)
            self.roots.setdefault(id(module), module)
            self.last_root = id(module)
            if self.awaiting_copy:
                self._copy_if_stepped(module)
        self.depth += 1

    def forward_post(self, module: nn.Module, args: tuple, *rest: Any) -> None:
        if torch.compiler.is_compiling():
            return
        self.depth = max(0, self.depth - 1)
        kwargs, output = rest if len(rest) == 2 else ({}, rest[-1] if rest else None)
        if self.depth == 0 and id(module) == self.last_root and torch.is_grad_enabled():
            self._capture_inputs(module, args, kwargs or {})
            if address := _address(output):
                self._recent_outputs[address] = id(module)
                while len(self._recent_outputs) > RECENT_OUTPUTS:
                    del self._recent_outputs[next(iter(self._recent_outputs))]  # here, where global hooks get keyword inputs too
        if self.depth == 0 and isinstance(module, nn.modules.loss._Loss) and torch.is_grad_enabled():
            self._loss_called(module, type(module).__name__, "module", args, {})
        if self.hunting_nonfinite and not self.first_bad_module and isinstance(output, torch.Tensor):
            if output.is_floating_point() and not bool(torch.isfinite(output).all()):
                self.first_bad_module = self._module_name(module)

    def _capture_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.samples >= CAPTURE_SAMPLES or len(self.batches) >= CAPTURE_BATCHES:
            return
        try:
            batch = CapturedBatch(_detached(args), _detached(kwargs), model_id=id(module))
        except Exception:  # inputs nndoctor cannot copy: the checklist will say the data was not captured
            return
        self.batches.append(batch)
        self.samples += _batch_size(args, kwargs)

    def _loss_called(self, loss: Any, name: str, kind: str, args: tuple, kwargs: dict) -> None:
        if name not in self.losses:
            self.losses[name] = LossCall(name, kind, _script_line(self.script))
            if self.loss_fn is None:
                self.loss_fn = copy.deepcopy(loss) if isinstance(loss, nn.Module) else loss
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if self.batches and self.batches[-1].target is None and self.batches[-1].model_id == self.last_root:
            if isinstance(target, torch.Tensor):
                self.batches[-1].target = target.detach().to("cpu", copy=True)

    def _note_feeds(self, module: nn.Module, args: tuple) -> None:
        """One model's output fed to another (a generator's samples to a discriminator, detached
        or not: detach() shares the storage, so the data pointer tells)."""
        for arg in args:
            source = self._recent_outputs.get(_address(arg))
            if source is not None and source != id(module):
                self.feeds.add((source, id(module)))

    # -- backward passes ------------------------------------------------------------------------
    def backward_called(self, loss: Any) -> None:
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self.pending_losses.append(loss.detach())

    def _watch(self, state: _OptimizerState) -> None:
        """A hook on one parameter that received a gradient: it runs once per backward pass
        through this optimizer's parameters, before the gradient is added to ``.grad``, and
        sees whether ``.grad`` was reset (None or zeros) since the optimizer's last step."""
        sentinel = next((p for p in state.params if p.grad is not None), None)
        if sentinel is None:
            return
        engine = torch.autograd.Variable._execution_engine

        def on_gradient(_: torch.Tensor) -> None:
            state.backward_passes += 1
            # Reset if any backward pass since the step found the gradient cleared: a GAN's
            # generator pass adds to the critic's gradient before the critic's zero_grad().
            if not state.reset_seen:
                grad = sentinel.grad
                state.reset_seen = grad is None or not bool(grad.any())
            if _sampled(state.steps + 1):
                engine.queue_callback(lambda: setattr(state, "norm_after_backward", _grad_norm(state.params)))

        self.handles.append(sentinel.register_hook(on_gradient))
        state.watched = True

    # -- optimizer steps ------------------------------------------------------------------------
    def step_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if id(optimizer) not in self.optimizers:
            self._first_step(optimizer)
        if not _has_closure(args, kwargs):
            self._record(optimizer)

    def step_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if _has_closure(args, kwargs):  # Lightning: forward and backward ran inside step(closure)
            self._record(optimizer)
        if len(self.steps) >= self.max_steps:
            raise StopScript("steps")
        if self.time_budget is not None and time.perf_counter() - self.start >= self.time_budget:
            raise StopScript("time_budget")

    def _record(self, optimizer: torch.optim.Optimizer) -> None:
        state = self.optimizers[id(optimizer)]
        now = time.perf_counter()
        losses = tuple(float(v) for v in self.pending_losses)  # one sync per step for all of them
        self.pending_losses.clear()
        norm_backward = float(state.norm_after_backward) if state.norm_after_backward is not None else None
        state.steps += 1
        norm_step = float(_grad_norm(state.params)) if _sampled(state.steps) else None
        step = Step(
            number=len(self.steps) + 1,
            optimizer=state.info_name,
            lrs=tuple(float(g["lr"]) for g in optimizer.param_groups),
            losses=losses,
            backward_passes=state.backward_passes if state.watched else None,
            grads_reset=state.reset_seen,
            grad_norm_backward=norm_backward,
            grad_norm_step=norm_step,
            time_s=now - self.last_step_time,
        )
        self.steps.append(step)
        self.last_step_time = now
        if state.steps <= COVERAGE_STEPS:
            self._read_coverage()
        if _sampled(state.steps):
            self._read_modes()
        self._note_nonfinite(step)
        if not state.watched:
            self._watch(state)
        state.backward_passes, state.reset_seen, state.norm_after_backward = 0, None, None

    def _first_step(self, optimizer: torch.optim.Optimizer) -> _OptimizerState:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        held = {id(p) for p in params}
        cls = type(optimizer).__name__
        same = sum(1 for s in self.optimizers.values() if type(s.optimizer).__name__ == cls)
        state = _OptimizerState(f"{cls}#{same + 1}" if same else cls, optimizer, params)
        state.groups = tuple({k: _plain(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups)
        self.optimizers[id(optimizer)] = state
        self.awaiting_copy.update(held)
        for root in list(self.roots.values()):
            self._copy_if_stepped(root)
        return state

    def _copy_if_stepped(self, root: nn.Module) -> None:
        """Keep a copy of a model some optimizer holds, before that optimizer's first step
        changes it (at the step, or at its next forward pass when the forward runs inside
        step(closure), as under Lightning)."""
        if id(root) in self.model_copies or not any(id(p) in self.awaiting_copy for p in root.parameters()):
            return
        copied = copy.deepcopy(root)
        for p in copied.parameters():
            p.grad = None
        self.model_copies[id(root)] = copied

    def _read_modes(self) -> None:
        """The mode of every dropout and batch-norm module at this step: the mode its training
        forward passes ran in (read here rather than in each forward, which also works inside
        compiled models)."""
        for root in self.roots.values():
            for module in root.modules():
                if isinstance(module, DROPOUT_TYPES + NORM_TYPES):
                    count = self.modes.get(id(module))
                    if count is None:
                        count = self.modes[id(module)] = _ModeCount(module)
                    if module.training:
                        count.train += 1
                    else:
                        count.eval += 1

    def _read_coverage(self) -> None:
        held = {id(p) for s in self.optimizers.values() for p in s.params}
        used: set[int] = set()
        for root in self.roots.values():
            names = {id(p): name for name, p in root.named_parameters()}
            used.update(names)
            prefix = self._root_name(root)
            for p_id, p in ((id(p), p) for p in root.parameters()):
                if p_id not in held and p.grad is not None and p.requires_grad:
                    self.unheld.add(f"{prefix}.{names[p_id]}")
            self._frozen_output(root, prefix)
        for state in self.optimizers.values():
            unused = sum(1 for p in state.params if id(p) not in used)
            if unused:
                self.stale[state.info_name] = unused

    def _frozen_output(self, root: nn.Module, prefix: str) -> None:
        """The last layer with weights frozen while other parameters of the model train: a freeze
        that also caught the classifier (a name filter, a slice of children). "Other parameters"
        are any of the model's, not only earlier layers': a filter that freezes every child module
        may leave only a bare parameter of the root (a logit scale) training, and the output layer
        is still trained by nothing. A frozen backbone under a trainable head passes."""
        layers = [(name, m) for name, m in root.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv1d))]
        if not layers:
            return
        name, last = layers[-1]
        own = {id(p) for p in last.parameters()}
        if not any(p.requires_grad for p in last.parameters()) and any(
            p.requires_grad for p in root.parameters() if id(p) not in own
        ):
            self.frozen_output.add(f"{prefix}.{name}")

    def _note_nonfinite(self, step: Step) -> None:
        if self.nonfinite is not None:
            return
        if any(not math.isfinite(v) for v in step.losses):
            kind = "loss"
        elif step.grad_norm_step is not None and not math.isfinite(step.grad_norm_step):
            kind = "gradient"
        else:
            return
        self.nonfinite = NonFiniteSeen(step.number, kind, "")
        self.hunting_nonfinite = True

    # -- naming ---------------------------------------------------------------------------------
    def _root_name(self, root: nn.Module) -> str:
        cls = type(root).__name__
        same = [r for r in self.roots.values() if type(r).__name__ == cls]
        return f"{cls}#{same.index(root) + 1}" if len(same) > 1 else cls

    def _module_name(self, module: nn.Module) -> str:
        for root in self.roots.values():
            if module is root:
                return self._root_name(root)
            for name, m in root.named_modules():
                if m is module:
                    return f"{self._root_name(root)}.{name}"
        return type(module).__name__

    # -- the finished trace ---------------------------------------------------------------------
    def finish(self, args: tuple[str, ...], stop_reason: str, error: str) -> Observation:
        models, model_names = self._models()
        optimizers = []
        for state in self.optimizers.values():
            owner = next((model_names[r] for r, root in self.roots.items()
                          if r in model_names and any(p is q for p in root.parameters() for q in state.params[:1])), "")
            optimizers.append(OptimizerInfo(
                name=state.info_name, cls=type(state.optimizer).__name__,
                groups=state.groups,
                tensors=len(state.params), parameters=sum(p.numel() for p in state.params), model=owner,
                schedulers=_schedulers(state.optimizer),
            ))
        nonfinite = self.nonfinite
        if nonfinite is not None and self.first_bad_module:
            nonfinite = NonFiniteSeen(nonfinite.step, nonfinite.kind, self.first_bad_module)
        trace = LoopTrace(
            script=str(self.script), args=args, steps=tuple(self.steps), optimizers=tuple(optimizers),
            models=tuple(models), modes=self._modes(),
            coverage=Coverage(tuple(sorted(self.unheld)), dict(self.stale), tuple(sorted(self.frozen_output))),
            losses=tuple(self.losses.values()), nonfinite=nonfinite, stop_reason=stop_reason,
            feeds=tuple(sorted((model_names[a], model_names[b]) for a, b in self.feeds if a in model_names and b in model_names)),
            batches_taken=len(self.batches), samples_taken=self.samples,
            wall_s=time.perf_counter() - self.start, error=error,
        )
        batches = {name: [b for b in self.batches if b.model_id == r] for r, name in model_names.items()}
        return Observation(
            trace, {model_names[r]: m for r, m in self.model_copies.items()},
            {s.info_name: s.optimizer for s in self.optimizers.values()}, self.loss_fn, batches,
            {model_names[r]: self.roots[r] for r in self.model_copies if r in model_names},
        )

    def _models(self) -> tuple[list[ModelInfo], dict[int, str]]:
        """The models some optimizer steps (the roots holding its parameters)."""
        infos, names = [], {}
        for root_id, root in self.roots.items():
            ids = {id(p) for p in root.parameters()}
            stepping = tuple(s.info_name for s in self.optimizers.values() if any(id(p) in ids for p in s.params))
            if not stepping:
                continue
            name = self._root_name(root)
            names[root_id] = name
            infos.append(ModelInfo(
                name, type(root).__name__, sum(p.numel() for p in root.parameters()),
                sum(p.numel() for p in root.parameters() if p.requires_grad), stepping,
            ))
        return infos, names

    def _modes(self) -> tuple[ModeUse, ...]:
        held = {id(p) for s in self.optimizers.values() for p in s.params}
        uses = []
        for root in self.roots.values():
            prefix = self._root_name(root)
            modules = dict(root.named_modules())
            for name, module in modules.items():
                count = self.modes.get(id(module))
                if count is None:
                    continue
                own = list(module.parameters(recurse=False))
                judged = own or list(modules[name.rpartition(".")[0]].parameters()) if name else own
                trained = any(p.requires_grad and id(p) in held for p in judged)
                kind = "dropout" if isinstance(module, DROPOUT_TYPES) else "batchnorm"
                p = float(module.p) if kind == "dropout" else None
                uses.append(ModeUse(f"{prefix}.{name}", kind, p, count.train, count.eval, trained))
        return tuple(uses)


class _Mode(TorchFunctionMode):
    """Sees ``loss.backward()`` and functional losses called outside any module."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # Runs for every torch call of the script: one set lookup on the common path.
        if func in WATCHED_FUNCTIONS:
            self._seen(func, args, kwargs or {})
        return func(*args, **(kwargs or {}))

    def _seen(self, func, args: tuple, kwargs: dict) -> None:
        if func in BACKWARD_FUNCTIONS:
            if args:
                self.recorder.backward_called(args[0])
        elif self.recorder.depth == 0 and torch.is_grad_enabled():
            self.recorder._loss_called(func, func.__name__, "function", args, kwargs)


def observe(script: Path, args: list[str], steps: int = 100, time_budget: float | None = None) -> Observation:
    """Run ``script`` as __main__ with ``args`` until ``steps`` optimizer steps (or ``time_budget``
    seconds) and return what was observed. The script's stdout goes to stderr, so that nndoctor's
    own report owns stdout. Bad input (no script, no step) raises InputError."""
    if steps < 1:
        raise InputError(f"--steps must be at least 1, not {steps}: nndoctor needs optimizer steps to observe.")
    if not script.is_file():
        raise InputError(f"{script} does not exist. Pass the path of your training script: nndoctor run train.py -- ARGS.")
    recorder = _Recorder(script.resolve(), steps, time_budget)
    stop_reason, error = "finished", ""
    failure: BaseException | None = None
    with script_environment(script, args), _instruments(recorder):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except StopScript as stop:
            stop_reason = str(stop)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        except SystemExit as exc:
            if exc.code not in (None, 0):
                stop_reason, error, failure = "error", f"the script exited with status {exc.code}", exc
        except Exception as exc:  # the user's script: anything may be raised
            stop_reason, failure = "error", exc
            error = f"{type(exc).__name__}: {exc}. {_script_frame(exc, script)}".strip()
    if not recorder.steps:
        no_step(script, stop_reason, failure, error)
    return recorder.finish(tuple(args), stop_reason, error)


def no_step(script: Path, stop_reason: str, failure: BaseException | None, error: str) -> None:
    if stop_reason == "interrupted":
        raise InputError(f"{script} was interrupted before its first optimizer step: there is nothing to report.")
    if failure is not None:
        raise InputError(
            f"{script} raised before its first optimizer step: {error} "
            f"Fix the script so that `python {script.name}` trains, then run nndoctor again."
        ) from failure
    raise InputError(
        f"{script} ended without any optimizer step, so there was no training loop to observe. "
        f"Pass the script that trains (it must call optimizer.step(), directly or through Lightning or a "
        f"Hugging Face Trainer), with its arguments after --: nndoctor run train.py -- --epochs 1."
    )


@contextlib.contextmanager
def script_environment(script: Path, args: list[str]):
    """sys.argv and sys.path as `python script ARGS` sets them; stdout to stderr; no bytecode
    written beside the script; all restored afterwards, and the script's own modules forgotten."""
    folder = str(script.resolve().parent)
    saved_argv, saved_path, saved_bytecode = sys.argv[:], sys.path[:], sys.dont_write_bytecode
    known_modules = set(sys.modules)
    sys.argv = [str(script), *args]
    sys.path.insert(0, folder)
    sys.dont_write_bytecode = True
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.argv, sys.dont_write_bytecode = saved_argv, saved_bytecode
        sys.path[:] = saved_path
        for name in set(sys.modules) - known_modules:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(folder):
                del sys.modules[name]


@contextlib.contextmanager
def _instruments(recorder: _Recorder):
    hooks = nn.modules.module
    handles = [
        hooks.register_module_forward_pre_hook(recorder.forward_pre),
        hooks.register_module_forward_hook(recorder.forward_post, with_kwargs=True, always_call=True),
        register_optimizer_step_pre_hook(recorder.step_pre),
        register_optimizer_step_post_hook(recorder.step_post),
    ]
    try:
        with _Mode(recorder):
            yield
    finally:
        for handle in handles + recorder.handles:
            handle.remove()


def _sampled(step: int) -> bool:
    """Whether the gradient norms are read at this step of an optimizer (1-based): each of the
    first ones, then every NORM_EVERY-th, which keeps the observation's cost per step low."""
    return step <= NORM_FIRST or step % NORM_EVERY == 0


def _has_closure(args: tuple, kwargs: dict) -> bool:
    return (bool(args) and args[0] is not None) or kwargs.get("closure") is not None


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    return torch.nn.utils.get_total_norm(grads)


def _address(value: Any) -> int:
    """The data pointer of a tensor's storage (shared by its detach()), 0 for anything without one
    (empty, sparse or storage-less tensors, non-tensors)."""
    if not isinstance(value, torch.Tensor):
        return 0
    try:
        return value.data_ptr()
    except RuntimeError:
        return 0


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return copy.copy(value)


def _batch_size(args: tuple, kwargs: dict) -> int:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def _script_line(script: Path) -> str:
    """'train.py:42: loss = criterion(out, y)' for the innermost frame of the script, if any."""
    frames = [f for f in traceback.extract_stack() if _same_file(f.filename, script)]
    if not frames:
        return ""
    frame = frames[-1]
    return f"{script.name}:{frame.lineno}: {(frame.line or '').strip()}"


def _script_frame(exc: BaseException, script: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _same_file(f.filename, script)]
    if not frames:
        return ""
    return f"At {script.name} line {frames[-1].lineno} ({(frames[-1].line or '').strip()})."


def _same_file(filename: str, script: Path) -> bool:
    try:
        return Path(filename).resolve() == script.resolve()
    except OSError:
        return False


def _schedulers(optimizer: torch.optim.Optimizer) -> tuple[str, ...]:
    """LR schedulers built on this optimizer: objects that refer to it (found once, at the end)."""
    import gc

    found = []
    for referrer in gc.get_referrers(optimizer):
        if isinstance(referrer, torch.optim.lr_scheduler.LRScheduler) and referrer.optimizer is optimizer:
            found.append(type(referrer).__name__)
    return tuple(sorted(set(found)))


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return repr(value)
