"""Watching a long job: ``nndoctor.watch(model, optimizer)`` in a hand-written loop, the Lightning
and Hugging Face callbacks (nndoctor.integrations), and ``attach_globally`` for a script whose
model and optimizer are created out of reach (``nndoctor run --watch``)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Mapping

import torch
from torch import nn

from nndoctor.watching.events import WatchEvent
from nndoctor.watching.settings import WatchSettings, make_settings
from nndoctor.watching.watcher import Watcher, WatchStopped


def watch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    sample_every: int = 10,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    events: str | Path | None = None,
    stop_on: str | None = None,
    save_last_good: str | Path | None = None,
    alerts: bool = True,
    stream: IO[str] | None = None,
) -> Watcher:
    """Watch ``model`` trained by ``optimizer`` until ``close()`` (or the end of a ``with`` block).

    In the loop call ``w.step(loss)`` (optionally ``w.step(loss, targets)``) once per iteration,
    before ``optimizer.step()``, so that a failing loss stops the job before its update::

        with nndoctor.watch(model, opt, events="events.jsonl", stop_on="fail") as w:
            for x, y in loader:
                loss = loss_fn(model(x), y)
                opt.zero_grad(); loss.backward()
                w.step(loss, y)
                opt.step()
        print(w.report().to_markdown())

    ``sample_every``: heavy statistics every k-th optimizer step (the loss and the gradients'
    finiteness every step). ``thresholds``: overrides per event id, as in checks/watch.yaml.
    ``stop_on``: "fail" (or "warn") raises WatchStopped out of the loop at the first such event
    (the ``with`` block swallows it). ``save_last_good``: where to save the model's state_dict from
    before the failure when the watch stops.
    """
    settings = make_settings(thresholds, sample_every, stop_on, save_last_good, events, alerts)
    return Watcher(model, optimizer, settings, stream=stream)


__all__ = ["watch", "Watcher", "WatchEvent", "WatchSettings", "WatchStopped", "make_settings"]
