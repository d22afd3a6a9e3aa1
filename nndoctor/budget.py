"""Stopping a run on time, on Ctrl-C and on SIGTERM, so that a partial report can still be written.

``Stop`` is a BaseException: user code that catches ``Exception`` (a training loop's retry, a
model's defensive ``try``) cannot swallow it. The time budget interrupts the code running when it
runs out (a SIGALRM timer, where signals can be used: the main thread of a POSIX process); SIGTERM
is turned into a Stop for the run's duration. Previous handlers and timers are restored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Iterator


class Stop(BaseException):
    """The run must stop now; ``reason`` says why, for the report ("time budget of 30 s spent")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Deadline:
    """A point in time (time.monotonic) by which the run must end; None: no budget."""

    def __init__(self, seconds: float | None, start: float | None = None):
        self.seconds = seconds
        self.at = None if seconds is None else (time.monotonic() if start is None else start) + seconds

    @property
    def reason(self) -> str:
        return f"time budget of {self.seconds:g} s spent"

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0


def _signals_usable() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


@contextlib.contextmanager
def enforced(deadline: Deadline) -> Iterator[None]:
    """Raise Stop in the code running when ``deadline`` passes (no-op without a budget, or where
    signals cannot be used: then the budget is checked between checks only)."""
    remaining = deadline.remaining()
    if remaining is None or not _signals_usable():
        yield
        return
    if remaining <= 0:
        raise Stop(deadline.reason)

    def expire(signum, frame):
        raise Stop(deadline.reason)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def terminate_as_stop() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, a container stopped) stops the run like Ctrl-C does."""
    if not _signals_usable():
        yield
        return

    def terminated(signum, frame):
        raise Stop("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
