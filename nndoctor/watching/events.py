"""What the watcher reports: one frozen event per new problem, written as JSON lines and announced
on stderr in one line (rate-limited: each problem once, at most ``max_alerts`` lines in all)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from nndoctor.errors import InputError
from nndoctor.result import Status


@dataclass(frozen=True)
class WatchEvent:
    step: int  # the optimizer step (0-based) the problem was seen at
    check: str  # event id, from checks/watch.yaml (pre-flight ids where the same thing is judged)
    code: str  # qualified, e.g. "loss_progress.spike"
    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    module: str | None = None  # the first module (or parameter) where it shows, when known
    value: float | None = None  # the measured figure the summary states

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["evidence"] = list(self.evidence)
        return data

    def line(self) -> str:
        where = f" in {self.module}" if self.module else ""
        return f"nndoctor watch: step {self.step}: {self.status.value.upper()} {self.code}{where}: {self.summary}"


class EventLog:
    """Collects events; appends each to the JSON-lines file and alerts on stderr."""

    def __init__(self, path: Path | None, alerts: bool, max_alerts: int, stream: IO[str] | None = None):
        self.events: list[WatchEvent] = []
        self._alerts = alerts
        self._max_alerts = max_alerts
        self._alerted = 0
        self._stream = stream
        self._file = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("w", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"Cannot write the events file {path}: {exc.strerror}. Choose a writable path.") from None

    def add(self, event: WatchEvent) -> None:
        self.events.append(event)
        if self._file is not None:
            self._file.write(json.dumps({"time": round(time.time(), 3), **event.to_dict()}) + "\n")
            self._file.flush()  # a job killed later keeps every event written so far
        if self._alerts and self._alerted < self._max_alerts:
            self._alerted += 1
            stream = self._stream or sys.stderr
            suffix = " (further alerts only in the events log)" if self._alerted == self._max_alerts else ""
            print(event.line() + suffix, file=stream, flush=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
