"""The watcher: torch's own hooks on the model (forward), on its activation modules (sampled
steps only) and on the optimizer (step pre/post), all removed on close. It feeds the Judge and
acts on what it reports: alert, log, and with stop_on stop the job by raising WatchStopped from
the hook that saw the problem; in the optimizer's step pre-hook that is before the update."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from typing import IO, Any

import torch
from torch import nn

from nndoctor.result import Report, Status
from nndoctor.watching.events import EventLog, WatchEvent
from nndoctor.watching.judge import Judge, alive_units, output_stats, saturated_share
from nndoctor.watching.settings import WatchSettings

ACTIVATIONS = {nn.ReLU: ("dead_relu", "relu"), nn.Tanh: ("saturation", "tanh"), nn.Sigmoid: ("saturation", "sigmoid")}
STOP_LEVELS = {"fail": (Status.FAIL,), "warn": (Status.FAIL, Status.WARN)}


class WatchStopped(Exception):
    """Raised from inside the training loop when ``stop_on`` is met; ``with nndoctor.watch(...)``
    swallows it, so the loop ends there and the code after the ``with`` block runs."""

    def __init__(self, event: WatchEvent):
        super().__init__(event.line())
        self.event = event


def prediction(output: Any) -> torch.Tensor | None:
    """The prediction in a model's output: a tensor, else its ``logits``, else its first tensor."""
    if isinstance(output, torch.Tensor):
        return output
    logits = output.get("logits") if isinstance(output, dict) else getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def output_loss(output: Any) -> torch.Tensor | None:
    """The loss a model returns itself (Hugging Face models given labels)."""
    loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
    return loss if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None


class Watcher:
    """Watches one model and its optimizer; see nndoctor.watching.watch for the public entry point."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, settings: WatchSettings,
                 loss_from_output: bool = False, stream: IO[str] | None = None, judge_in_pre_hook: bool = True):
        self.model, self.optimizer, self.settings = model, optimizer, settings
        self.log = EventLog(settings.events, settings.alerts, settings.max_alerts, stream)
        self.judge = Judge(settings, self._on_event)
        self.step_index = 0  # optimizer steps completed
        self.stopped: WatchEvent | None = None
        self.notes: list[str] = []
        self._loss_from_output = loss_from_output
        # Lightning runs forward and backward in a closure inside optimizer.step(), after torch's
        # pre-hooks: its callback calls before_update() itself once the gradients exist.
        self._judge_in_pre_hook = judge_in_pre_hook
        self._stop: WatchEvent | None = None
        self._sampling = True
        self._output: torch.Tensor | None = None
        self._output_judged = True
        self._inputs: tuple[tuple, dict] | None = None
        self._targets: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None
        self._activations: list[tuple[str, str, float]] = []
        self._alive: dict[str, tuple[torch.Tensor | None, int]] = {}  # ReLU module -> units seen firing, rows
        self._before: list[torch.Tensor] | None = None
        self._good_state: dict[str, torch.Tensor] | None = None
        self._closed = False
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._locating = False  # rerunning the forward to find a NaN's first module: hooks stay out
        names = {id(p): n for n, p in model.named_parameters()}
        in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
        order = [p for _, p in model.named_parameters() if id(p) in in_optimizer]
        order += [p for g in optimizer.param_groups for p in g["params"] if id(p) not in names]
        self._params = order
        self._names = [names.get(id(p), f"param{i}") for i, p in enumerate(order)]
        self._matrices = [p.dim() >= 2 for p in order]
        self._hooks = ExitStack()
        self._attach()

    # -- hooks -----------------------------------------------------------------------------------
    def _attach(self) -> None:
        add = self._hooks.enter_context
        add(self.model.register_forward_hook(self._on_forward, with_kwargs=True))
        for name, module in self.model.named_modules():
            kind = next((v for t, v in ACTIVATIONS.items() if type(module) is t), None)
            if kind:
                add(module.register_forward_hook(self._activation_hook(name, *kind)))
            elif isinstance(module, nn.Softmax):
                add(module.register_forward_hook(self._on_softmax))
        if self._judge_in_pre_hook:
            add(self.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: self.before_update()))
        add(self.optimizer.register_step_post_hook(self._after_step))

    def _on_forward(self, module, args, kwargs, output) -> None:
        if self._locating or not torch.is_grad_enabled():
            return  # a validation pass under no_grad is not the training step's output
        if not self._output_judged and self._output is not None:
            self._judge_outputs()  # the last iteration's step() never came: judge without labels
        tensor = prediction(output)
        self._output = tensor.detach() if tensor is not None else None  # detached: keeps no graph alive
        self._inputs = (tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args), kwargs)
        labels = kwargs.get("labels")
        if isinstance(labels, torch.Tensor):
            self._targets = labels.detach()
        self._output_judged = not self._sampling
        if self._loss_from_output:
            loss = output_loss(output)
            if loss is not None:
                self.step(loss)

    def _activation_hook(self, name: str, check: str, kind: str):
        def hook(module, args, output):
            if not self._sampling or self._locating or not torch.is_grad_enabled() or not isinstance(output, torch.Tensor):
                return
            if kind != "relu":
                self._activations.append((name, check, saturated_share(output, kind)))
                return
            # A unit silent on a small batch is not dead: gather rows over sampled batches first.
            alive = alive_units(output)
            if alive is None:
                return
            seen, rows = self._alive.get(name, (None, 0))
            seen = alive if seen is None or seen.shape != alive.shape else seen | alive
            rows += output.shape[0]
            if rows >= int(self.settings.of("dead_relu")["rows"]):
                self._activations.append((name, check, float((~seen).float().mean())))
                seen, rows = None, 0
            self._alive[name] = (seen, rows)
        return hook

    def _on_softmax(self, module, args, output) -> None:
        if self._sampling and torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor):
            self._logits = args[0].detach()

    def before_update(self) -> None:
        """Judge the gradients (and the sampled statistics) of the step about to be applied."""
        step = self.step_index
        self.judge.lr(step, float(self.optimizer.param_groups[0]["lr"]))
        pairs = [(n, p.grad) for n, p in zip(self._names, self._params) if p.grad is not None]
        if pairs:
            names = [n for n, _ in pairs]
            norms = torch.stack([v.float() for v in torch._foreach_norm([g for _, g in pairs])])
            total = float(torch.linalg.vector_norm(norms))
            per_layer = norms.tolist() if self._sampling or not math.isfinite(total) else None
            self.judge.gradients(step, names, per_layer, total)
        if self._sampling:
            if not self._output_judged and self._targets is not None:
                self._judge_outputs()
            for name, check, share in self._activations:
                self.judge.activation(step, name, check, share)
            self._activations.clear()
            self._before = [p.detach().clone() for p in self._params]
        self._raise_if_stopped(weights_good=True)

    def _after_step(self, optimizer, args, kwargs) -> None:
        step = self.step_index
        if self._sampling and self._before is not None:
            with torch.no_grad():
                weights = torch.stack([v.float() for v in torch._foreach_norm(self._params)]).tolist()
                updates = torch.stack([v.float() for v in torch._foreach_norm(torch._foreach_sub(self._params, self._before))]).tolist()
            self._before = None
            self.judge.updates(step, self._names, weights, updates, self._matrices)
            if self.settings.save_last_good and all(math.isfinite(w) for w in weights):
                self._good_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self.step_index += 1
        self._sampling = self.step_index % self.settings.sample_every == 0
        self._raise_if_stopped(weights_good=False)

    # -- the loop's side -------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, targets: torch.Tensor | None = None) -> None:
        """Record this iteration's loss (and optionally its labels). Call it before
        optimizer.step() so that a failing loss stops the job before the update."""
        if targets is not None:
            self._targets = targets.detach()
        value = float(loss.detach().float()) if isinstance(loss, torch.Tensor) else float(loss)
        output_finite = None
        if not math.isfinite(value) and self._output is not None:
            output_finite = bool(torch.isfinite(self._output).all())
            if not output_finite:
                self._report_nonfinite_output()
            else:
                self._output_judged = False  # a finite output and a non-finite loss: look at the output now
        self.judge.loss(self.step_index, value, output_finite)
        if not self._output_judged and self._targets is not None:
            self._judge_outputs()
        self._raise_if_stopped(weights_good=True)

    def _judge_outputs(self) -> None:
        self._output_judged = True
        if self._output is None:
            return
        stats = output_stats(self._output, self._targets, self._logits)
        self._logits = None
        if stats is not None:
            self.judge.outputs(self.step_index, stats)

    def _report_nonfinite_output(self) -> None:
        from nndoctor.watching.locate import first_nonfinite_module

        self._locating = True
        try:
            module = first_nonfinite_module(self.model, *self._inputs) if self._inputs else None
        finally:
            self._locating = False
        event = WatchEvent(self.step_index, "numerics", "numerics.nonfinite_output", Status.FAIL,
                           "the model's output holds NaN/Inf" + (f"; {module} is the first module whose output does" if module else ""),
                           module=module)
        if not any(e.code == event.code for e in self.log.events):
            self._on_event(event)

    def _on_event(self, event: WatchEvent) -> None:
        self.log.add(event)
        if self.settings.stop_on and event.status in STOP_LEVELS[self.settings.stop_on] and self._stop is None:
            self._stop = event

    def _raise_if_stopped(self, weights_good: bool) -> None:
        """Stop the job: keep the last good weights (the current ones when the update that would
        spoil them has not been applied yet) and raise out of the hook into the training loop."""
        if self._stop is None or self.stopped is not None:
            return
        self.stopped = self._stop
        path = self.settings.save_last_good
        if path is not None:
            current_good = weights_good and all(bool(torch.isfinite(p).all()) for p in self._params)
            state = self.model.state_dict() if current_good else self._good_state
            if state is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(state, path)
                self.notes.append(f"Saved the last good state_dict (before step {self.step_index if current_good else 'the last sample'}) to {path}.")
            else:
                self.notes.append("No good state_dict to save: the weights were already spoilt and no earlier one was kept.")
        raise WatchStopped(self.stopped)

    # -- the end -----------------------------------------------------------------------------------
    def close(self) -> Report:
        """Remove every hook, close the events file and return the report with its Timeline."""
        if not self._closed:
            self._closed = True
            self._ended = time.perf_counter()
            self._hooks.close()
            self.log.close()
        return self.report()

    def report(self) -> Report:
        from nndoctor.watching.timeline import build_report

        return build_report(self)

    @property
    def duration_s(self) -> float:
        """Seconds watched (so far, while open)."""
        return (self._ended or time.perf_counter()) - self._started

    @property
    def events(self) -> tuple[WatchEvent, ...]:
        return tuple(self.log.events)

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, WatchStopped)
