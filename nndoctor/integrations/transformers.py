"""``NndoctorWatch``: a Hugging Face TrainerCallback that watches training with nndoctor's watcher.

    from nndoctor.integrations.transformers import NndoctorWatch
    watch = NndoctorWatch(events="events.jsonl", stop_on="fail")
    Trainer(model=model, args=args, train_dataset=ds, callbacks=[watch]).train()
    print(watch.report.to_markdown())

The Trainer calls optimizer.step() after backward and clipping, so the watcher's optimizer step
pre-hook judges the gradients before the update; the loss is the one the model returns (given
``labels``), which are also the labels the predictions are judged against. With stop_on,
``trainer.train()`` raises nndoctor.watching.WatchStopped before the failing update is applied.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from nndoctor.result import Report
from nndoctor.watching import Watcher, make_settings


class NndoctorWatch(TrainerCallback):
    """Keyword arguments as for nndoctor.watch. ``report``: the Report, once training ended or
    stopped (reading it closes the watcher, so the hooks go also after a WatchStopped)."""

    def __init__(self, **watch_kwargs: Any):
        self._settings = make_settings(**watch_kwargs)
        self.watcher: Watcher | None = None

    @property
    def report(self) -> Report | None:
        return self.watcher.close() if self.watcher is not None else None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs) -> None:
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        self.watcher = Watcher(model, optimizer, self._settings, loss_from_output=True)

    def on_train_end(self, args, state, control, **kwargs) -> None:
        if self.watcher is not None:
            self.watcher.close()
