"""What a check receives: the Subject plus shared, cached measurements ("probes").

A probe is any function ``probe(ctx) -> value``; ``ctx.shared(probe)`` runs it once per run and
hands every later caller the same value (or re-raises the same exception), so the checks that need
one instrumented forward/backward pass or one short training run share it instead of repeating it.
Probes work on copies of the model; nothing here changes the user's objects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

import torch

from nndoctor import batching
from nndoctor.catalog import get_spec
from nndoctor.loading import Subject

T = TypeVar("T")

# Data scans hold at most this many input elements in memory (about 256 MB of float32).
SCAN_ELEMENT_BUDGET = 64_000_000
SCAN_MAX_SAMPLES = 2048


@dataclass(frozen=True)
class NonFiniteEvent:
    """The first place a NaN/Inf appeared during some pass a check ran."""

    phase: str  # e.g. "overfit_small_batch training"
    step: int
    where: str  # module path (the model's class name for its own forward), "loss", "input", "target" or a parameter
    kind: str  # "output", "gradient", "loss", "parameter", "input"
    op: str = ""  # the torch call ("log") or autograd function ("SqrtBackward0") that produced it, when known


@dataclass
class Context:
    subject: Subject
    options: Mapping[str, Any] = field(default_factory=dict)  # run-wide switches such as quick
    # The whole catalog with the user's overrides merged, by id: shared runs take their settings
    # from the check that owns them (catalog ``requires``), whichever checks were selected.
    specs: Mapping[str, Any] = field(default_factory=dict)
    loop: Any = None  # the LoopTrace of `nndoctor run` (nndoctor.loop); None when no loop was observed
    _cache: dict[Any, tuple[bool, Any]] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.subject.device

    @property
    def where(self) -> str:
        return str(self.subject.path)

    def thresholds(self, check_id: str) -> Mapping[str, Any]:
        """The merged thresholds of ``check_id`` (the catalog's defaults without a run's specs)."""
        spec = self.specs.get(check_id) or get_spec(check_id)
        return spec.thresholds

    def shared(self, probe: Callable[["Context"], T], *args: Any) -> T:
        key = (probe, args)
        if key not in self._cache:
            try:
                self._cache[key] = (True, probe(self, *args))
            except Exception as exc:  # cached so that every check using the probe reports it
                self._cache[key] = (False, exc)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    @property
    def dataset_size(self) -> int:
        return self.shared(_dataset_size)

    def indices(self, n: int) -> list[int]:
        """A fixed, seeded sample of n dataset indices (all of them, in order, if n >= size).

        The same n gives the same indices for the whole run, so checks see the same samples, and
        a smaller n draws a subset of a larger n's. The cost is bounded whatever the dataset's
        length: a lazily generated dataset of 10^9 items costs no more than one of 10^6."""
        size = self.dataset_size
        if n >= size:
            return list(range(size))
        return sorted(self.shared(_draw, n))

    def batch(self, n: int) -> tuple[Any, Any]:
        """n samples collated and moved to the run's device (cached per n)."""
        return self.shared(_device_batch, n)

    def scan(self) -> tuple[Any, Any]:
        """A CPU batch large enough for data statistics (up to 2048 samples, bounded in memory)."""
        return self.shared(_scan_batch)

    def seed_everything(self, offset: int = 0) -> None:
        torch.manual_seed((self.subject.seed if self.subject is not None else 0) + offset)

    def samples_within(self, elements: int, most: int, least: int = 16) -> int:
        """How many samples keep a pass within about ``elements`` input values (counted on the
        first input tensor), between ``least`` and ``most``: large inputs get smaller batches."""
        inputs, _ = batching.first_batch(self.subject.dataset, self.where, size=1)
        per_sample = max(1, batching.main_tensor(inputs).numel())
        return max(least, min(most, elements // per_sample))


def _dataset_size(ctx: Context) -> int:
    return batching.dataset_size(ctx.subject.dataset, ctx.where)


# Up to this many samples a full seeded permutation is drawn (a few milliseconds); beyond it only
# the n entries needed, so that a huge or lazily generated dataset costs O(n).
FULL_PERMUTATION_MAX = 1_000_000


def _draw(ctx: Context, n: int) -> list[int]:
    """The first n entries of a seeded random permutation of the indices. Datasets up to
    FULL_PERMUTATION_MAX draw it with torch.randperm on a private generator; larger ones with a
    Fisher-Yates shuffle that stops after n swaps and keeps only the swapped entries (O(n) time
    and memory). The global RNG is neither read nor advanced."""
    size = ctx.dataset_size
    if size <= FULL_PERMUTATION_MAX:
        generator = torch.Generator().manual_seed(ctx.subject.seed)
        return torch.randperm(size, generator=generator)[:n].tolist()
    rng, swapped, drawn = random.Random(ctx.subject.seed), {}, []
    for i in range(n):
        j = rng.randrange(i, size)
        drawn.append(swapped.get(j, j))
        swapped[j] = swapped.get(i, i)
    return drawn


def _device_batch(ctx: Context, n: int) -> tuple[Any, Any]:
    batch = batching.collate(ctx.subject.dataset, ctx.indices(n), ctx.where)
    return batching.to_device(batch, ctx.device)


def _scan_batch(ctx: Context) -> tuple[Any, Any]:
    inputs, _ = batching.first_batch(ctx.subject.dataset, ctx.where, size=1)
    per_sample = max(1, batching.main_tensor(inputs).numel())
    n = max(64, min(SCAN_MAX_SAMPLES, SCAN_ELEMENT_BUDGET // per_sample))
    return batching.collate(ctx.subject.dataset, ctx.indices(n), ctx.where)
