"""Watching a script's training without touching its code (``nndoctor run --watch train.py``):
torch's global hooks find the model and the optimizer the script creates, then hand over to a
Watcher on them.

* ``torch.nn.modules.module.register_module_forward_hook`` sees every module's forward: the last
  module to finish before a loss is the model (the outermost module finishes last), and loss
  modules (``nn.modules.loss._Loss``) give the loss and the labels. Once the watch is bound this
  global hook is removed (it would cost a call per module per step); the loss modules seen keep
  their own hook.
* ``torch.optim.optimizer.register_optimizer_step_pre_hook`` binds the watch at the first
  optimizer step: the Watcher registers its own hooks there, and torch calls them for that same
  step. Models that return their own ``loss`` (Hugging Face) are watched through it when the
  script calls no loss module.

Only training losses are recorded (ones that require grad): validation passes do not count."""

from __future__ import annotations

import runpy
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.loss import _Loss
from torch.nn.modules.module import register_module_forward_hook
from torch.optim.optimizer import register_optimizer_step_pre_hook

from nndoctor.result import Report
from nndoctor.watching.events import WatchEvent
from nndoctor.watching.settings import WatchSettings
from nndoctor.watching.watcher import Watcher, WatchStopped


class GlobalWatch:
    """The watch of whatever model and optimizer a script creates; ``watcher`` is None until its
    first optimizer step."""

    def __init__(self, settings: WatchSettings, stream: IO[str] | None = None):
        self.settings, self._stream = settings, stream
        self.watcher: Watcher | None = None
        self.notes: list[str] = []
        self._last_module: nn.Module | None = None
        self._loss_modules: dict[int, nn.Module] = {}
        self._pending: list[tuple[float, torch.Tensor | None]] = []  # losses before the first step
        self._hooks = ExitStack()
        self._forward_hook = None

    def _attach(self) -> None:
        self._forward_hook = register_module_forward_hook(self._on_any_forward)
        self._hooks.callback(lambda: self._forward_hook.remove())
        self._hooks.enter_context(register_optimizer_step_pre_hook(self._on_any_step))

    def _on_any_forward(self, module, args, output) -> None:
        if isinstance(module, _Loss):
            self._loss_modules[id(module)] = module
            self._on_loss(module, args, output)
        else:
            self._last_module = module

    def _on_loss(self, module, args, output) -> None:
        if not isinstance(output, torch.Tensor) or output.numel() != 1 or not output.requires_grad:
            return  # a validation loss, or a per-sample one
        targets = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None
        if self.watcher is None:
            self._pending.append((float(output.detach().float()), targets))
        else:
            self.watcher.step(output, targets)

    def _on_any_step(self, optimizer, args, kwargs) -> None:
        if self.watcher is not None or not isinstance(self._last_module, nn.Module):
            return
        model = self._last_module
        params = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not any(id(p) in params for p in model.parameters()):
            return  # the last forward was not of the model this optimizer trains
        self.watcher = Watcher(model, optimizer, self.settings, loss_from_output=not self._loss_modules, stream=self._stream)
        self._forward_hook.remove()  # from here on, the model's and the loss modules' own hooks
        for loss_module in self._loss_modules.values():
            self._hooks.enter_context(loss_module.register_forward_hook(self._on_loss))
        for loss, targets in self._pending:
            self.watcher.step(loss, targets)
        self._pending.clear()

    def close(self) -> Report | None:
        self._hooks.close()
        if self.watcher is None:
            return None
        return self.watcher.close()


@contextmanager
def attach_globally(settings: WatchSettings, stream: IO[str] | None = None) -> Iterator[GlobalWatch]:
    """Watch the first model and optimizer that train inside the block; every hook is removed at
    its end. WatchStopped (stop_on) propagates: the caller decides how the script ends."""
    watch = GlobalWatch(settings, stream)
    watch._attach()
    try:
        yield watch
    finally:
        watch.close()


def watch_script(path: str | Path, argv: Sequence[str], settings: WatchSettings, stream: IO[str] | None = None) -> ScriptWatch:
    """Run the training script ``path`` with ``argv`` to its end (or until ``stop_on`` stops it)
    under the global watch, as ``python path argv...`` would: ``sys.argv`` and ``sys.path[0]``
    set for it and restored after. A stop, Ctrl-C, or an exception the script raises after its
    first watched step end the script and are stated in the report's notes; before any step they
    propagate (there is nothing to report). For ``nndoctor run --watch``, which should run this
    inside its own script environment (stdout to stderr, no bytecode beside the script)."""
    path = Path(path)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.resolve().parent))
    stopped, ended = None, "ran to its end"
    try:
        with attach_globally(settings, stream) as watch:
            try:
                runpy.run_path(str(path), run_name="__main__")
            except WatchStopped as exc:
                stopped, ended = exc.event, f"stopped by the watch: {exc.event.line()}"
            except (Exception, KeyboardInterrupt, SystemExit) as exc:  # the user's script: anything
                if watch.watcher is None or watch.watcher.step_index == 0:
                    raise
                if isinstance(exc, SystemExit) and exc.code in (None, 0):
                    ended = "exited normally (sys.exit)"
                elif isinstance(exc, KeyboardInterrupt):
                    ended = "was interrupted (Ctrl-C)"
                else:
                    ended = f"raised {type(exc).__name__}: {exc}"
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    if watch.watcher is None:
        return ScriptWatch(report=None, stopped=None)
    report = watch.watcher.report()
    note = f"Script: `{' '.join(['python', path.name, *argv])}` {ended}, after {watch.watcher.step_index} optimizer steps."
    return ScriptWatch(report=replace(report, target=str(path), notes=(note, *report.notes)), stopped=stopped)


@dataclass(frozen=True)
class ScriptWatch:
    report: Report | None  # None when the script never stepped an optimizer on a model
    stopped: WatchEvent | None
