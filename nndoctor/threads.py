"""How many CPU threads torch uses during a run, chosen deliberately and restored afterwards.

nndoctor's probes run small batches through small models, where torch's intra-op threads buy
little, and on a shared machine they oversubscribe the cores: on a busy 2-core machine torch's
default of two threads per process ran 5-9x slower than one. The default is half the usable
cores (the rest stay free for the user's other work), at least 1 and at most MAX_DEFAULT. It
depends on the machine only, never on its momentary load, so the same seed on the same machine
gives the same report (the thread count can change the order of floating-point sums).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from nndoctor.errors import InputError

# Beyond a few threads the probes' small matrices stop getting faster.
MAX_DEFAULT = 4


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> tuple[int, str]:
    """The thread count for an unset --threads, with the reason, said in the report's notes."""
    cores = usable_cores()
    return max(1, min(cores // 2, MAX_DEFAULT)), f"half of {cores} core(s), at most {MAX_DEFAULT}"


@dataclass(frozen=True)
class ThreadChoice:
    count: int
    note: str  # for the report's notes: the count and where it came from


def choose(threads: int | None) -> ThreadChoice:
    """The count asked for (--threads, the config's threads:, check(threads=...)), else the default."""
    if threads is not None:
        return ThreadChoice(threads, f"Torch threads: {threads} (as set by --threads or the threads option).")
    count, why = default_threads()
    return ThreadChoice(count, f"Torch threads: {count} (default: {why}; --threads to change).")


def validate(threads: object, where: str) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"{where}: threads must be a whole number of at least 1, not {threads!r}.")
    return threads


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set for the block and restored after it (the user's setting
    is global state nndoctor must not change)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
