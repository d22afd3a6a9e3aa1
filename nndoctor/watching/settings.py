"""The watcher's catalog (checks/watch.yaml) and the settings of one watch: thresholds with the
user's overrides, the sampling knob and what to do on a problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from nndoctor.catalog import checklist_dir
from nndoctor.errors import InputError

STOP_ON = (None, "fail", "warn")


@dataclass(frozen=True)
class WatchSpec:
    id: str
    title: str
    catches: str
    fix: str
    thresholds: Mapping[str, Any]
    codes: Mapping[str, str]  # qualified code -> title


@lru_cache(maxsize=1)
def load_watch_catalog() -> tuple[WatchSpec, ...]:
    data = yaml.safe_load((checklist_dir() / "watch.yaml").read_text(encoding="utf-8"))
    return tuple(
        WatchSpec(
            id=entry["id"],
            title=entry["title"],
            catches=entry["catches"],
            fix=" ".join(str(entry["fix"]).split()),
            thresholds=MappingProxyType(dict(entry.get("thresholds") or {})),
            codes=MappingProxyType({f"{entry['id']}.{k}": " ".join(str(v).split()) for k, v in entry["codes"].items()}),
        )
        for entry in data["watch"]
    )


def watch_spec(event_id: str) -> WatchSpec:
    return next(s for s in load_watch_catalog() if s.id == event_id)


@dataclass(frozen=True)
class WatchSettings:
    """How one watch runs.

    ``sample_every``: the heavy statistics (per-layer gradient norms, update/weight ratios, weight
    norms, outputs, dead/saturated units) are taken on every k-th optimizer step; the loss and the
    gradients' finiteness on every step. ``stop_on``: "fail" (or "warn") stops the job at the
    first such event, before the optimizer step that would apply it where the event is seen
    before the step. ``save_last_good``: a path where the state_dict from before the failure is
    saved when the watch stops. ``events``: a JSON-lines file that receives every event.
    ``alerts``: one line on stderr per new problem, at most ``max_alerts`` in all.
    """

    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sample_every: int = 10
    stop_on: str | None = None
    save_last_good: Path | None = None
    events: Path | None = None
    alerts: bool = True
    max_alerts: int = 20

    def of(self, event_id: str) -> Mapping[str, Any]:
        return self.thresholds[event_id]


def make_settings(
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    sample_every: int = 10,
    stop_on: str | None = None,
    save_last_good: str | Path | None = None,
    events: str | Path | None = None,
    alerts: bool = True,
) -> WatchSettings:
    """Settings with the catalog's thresholds merged with the user's; bad values are InputErrors."""
    if stop_on not in STOP_ON:
        raise InputError(f"stop_on must be 'fail', 'warn' or None, not {stop_on!r}.")
    if not isinstance(sample_every, int) or sample_every < 1:
        raise InputError(f"sample_every must be a positive whole number of steps, not {sample_every!r}.")
    specs = {s.id: s for s in load_watch_catalog()}
    merged = {i: dict(s.thresholds) for i, s in specs.items()}
    for event_id, values in (thresholds or {}).items():
        if event_id not in specs:
            raise InputError(f"watch thresholds: unknown event id {event_id!r}. Valid ids are: {', '.join(specs)}.")
        unknown = [k for k in values if k not in specs[event_id].thresholds]
        if unknown:
            raise InputError(
                f"watch thresholds: {event_id} has no threshold {', '.join(map(str, unknown))}. "
                f"Its thresholds are: {', '.join(specs[event_id].thresholds) or 'none'}."
            )
        merged[event_id].update(values)
    return WatchSettings(
        thresholds=MappingProxyType({i: MappingProxyType(v) for i, v in merged.items()}),
        sample_every=sample_every,
        stop_on=stop_on,
        save_last_good=Path(save_last_good) if save_last_good else None,
        events=Path(events) if events else None,
        alerts=alerts,
    )
