"""``NndoctorWatch``: a Lightning Callback that watches the fit with nndoctor's watcher.

    from nndoctor.integrations.lightning import NndoctorWatch
    watch = NndoctorWatch(events="events.jsonl", stop_on="fail")
    trainer = lightning.Trainer(callbacks=[watch]); trainer.fit(module, loader)
    print(watch.report.to_markdown())

Lightning runs the forward and backward inside optimizer.step() (a closure), so the gradients are
judged in ``on_before_optimizer_step`` (after clipping, before the update) and the loss in
``on_before_backward``. With stop_on, ``trainer.fit`` raises nndoctor.watching.WatchStopped
before the failing update is applied.
"""

from __future__ import annotations

from typing import Any

import torch

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback

from nndoctor.result import Report
from nndoctor.watching import Watcher, make_settings


def _labels(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[1], torch.Tensor):
        return batch[1]
    if isinstance(batch, dict) and isinstance(batch.get("labels"), torch.Tensor):
        return batch["labels"]
    return None


class NndoctorWatch(Callback):
    """Keyword arguments as for nndoctor.watch (sample_every, thresholds, events, stop_on,
    save_last_good, alerts). Watches the first optimizer. ``report`` holds the Report after fit."""

    def __init__(self, **watch_kwargs: Any):
        self._settings = make_settings(**watch_kwargs)
        self.watcher: Watcher | None = None
        self.report: Report | None = None
        self._labels: torch.Tensor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.watcher = Watcher(pl_module, trainer.optimizers[0], self._settings, judge_in_pre_hook=False)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._labels = _labels(batch)

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self.watcher is not None:
            self.watcher.step(loss, self._labels)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.watcher is not None and optimizer is self.watcher.optimizer:
            self.watcher.before_update()

    def on_train_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()

    def _close(self) -> None:
        if self.watcher is not None and self.report is None:
            self.report = self.watcher.close()
