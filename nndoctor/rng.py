"""The global random state nndoctor found, put back when it is done: the checks seed torch for
reproducible verdicts, and a user's next `torch.rand` after `check()` must not notice."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import torch


@contextlib.contextmanager
def preserved() -> Iterator[None]:
    python_state = random.getstate()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    numpy_state = _numpy_random().get_state() if _numpy_random() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        if numpy_state is not None:
            _numpy_random().set_state(numpy_state)


def _numpy_random():
    try:
        import numpy
    except ImportError:  # numpy is optional for torch
        return None
    return numpy.random
