"""The watcher's corpus: real training loops on tiny models and synthetic data, four that go wrong
in the middle (the source threads' failures) and sound ones with the traps that look like faults
(noisy loss, warm restarts, LR decay to ~0, bf16, gradient accumulation, a frozen backbone).

Each case runs its loop under ``nndoctor.watch`` and returns a CaseRun: the watcher, the step at
which the fault starts (None for sound runs) and the steps run. Used by benchmarks/watch.py and
tests/test_watch.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

import nndoctor
from nndoctor.watching import Watcher

CLASSES = 10
FEATURES = 20


@dataclass
class CaseRun:
    name: str
    watcher: Watcher
    onset: int | None  # first optimizer step of the fault; None: a sound run
    steps: int


def blobs(n: int = 2048, classes: int = CLASSES, noise: float = 1.0, seed: int = 0, label_noise: float = 0.0):
    """Gaussian class blobs: learnable, balanced, with optional label noise (a noisy loss)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, FEATURES, generator=g) * 2
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + noise * torch.randn(n, FEATURES, generator=g)
    if label_noise:
        flip = torch.rand(n, generator=g) < label_noise
        y = torch.where(flip, torch.randint(0, classes, (n,), generator=g), y)
    return x, y


def batches(x, y, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - batch + 1, batch):
            idx = order[i:i + batch]
            yield x[idx], y[idx]


def mlp(softmax: bool = False, width: int = 64, depth: int = 2, act=nn.ReLU) -> nn.Sequential:
    layers, d = [], FEATURES
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, CLASSES))
    if softmax:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


def probability_nll(p: torch.Tensor, y: torch.Tensor, clip: float | None) -> torch.Tensor:
    """The hand-written categorical cross-entropy of the source threads: the log of probabilities."""
    p = p.gather(1, y[:, None]).squeeze(1)
    if clip is not None:
        p = p.clamp(clip, 1 - clip)
    return -torch.log(p).mean()


def _loop(name: str, model, opt, loss_fn, data, steps: int, onset: int | None, schedule: Callable[[int], None] | None = None,
          accumulate: int = 1, autocast: torch.dtype | None = None, **watch_kwargs) -> CaseRun:
    torch.manual_seed(0)
    watch_kwargs.setdefault("alerts", False)
    with nndoctor.watch(model, opt, **watch_kwargs) as w:
        for step in range(steps):
            if schedule:
                schedule(step)
            for _ in range(accumulate):
                x, y = next(data)
                with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
                    out = model(x)
                    loss = loss_fn(out, y) / accumulate
                loss.backward()
                w.step(loss * accumulate, y)
            opt.step()
            opt.zero_grad()
    return CaseRun(name, w, onset, w.step_index)


def _set_lr(opt, value: float) -> None:
    for group in opt.param_groups:
        group["lr"] = value


# -- faults -----------------------------------------------------------------------------------

def collapse_pinned(steps: int = 400, **kw) -> CaseRun:
    """Seed 000: a softmax model trained on the clipped log of its probabilities learns, then (a
    learning rate raised by a bad schedule at step 200) pins probabilities at 1 on wrong classes,
    one class takes over and the loss sits ~10x higher."""
    torch.manual_seed(1)
    x, y = blobs()
    model = mlp(softmax=True, act=lambda: nn.LeakyReLU(1 / 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    onset = 200
    return _loop("collapse_pinned (seed 000)", model, opt, lambda p, t: probability_nll(p, t, 1e-7), batches(x, y, 64), steps,
                 onset, lambda s: _set_lr(opt, 0.05 if s < onset else 20.0), **kw)


def accuracy_to_chance(steps: int = 400, **kw) -> CaseRun:
    """Seeds 001/003: a ReLU network with a softmax layer and the clipped categorical cross-entropy
    learns, then Adam at a learning rate raised at step 200 grows the ReLU weights and the logits
    (to ~1e4) and accuracy falls to 1/N. (The threads' logits were also alike across classes;
    this reproduction's are not, so logit_scale.large_equal is tested on its own in tests.)"""
    torch.manual_seed(2)
    x, y = blobs()
    model = mlp(softmax=True, width=128)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    onset = 200
    return _loop("accuracy_to_chance (seed 001)", model, opt, lambda p, t: probability_nll(p, t, 1e-7), batches(x, y, 64), steps,
                 onset, lambda s: _set_lr(opt, 1e-3 if s < onset else 0.5), **kw)


STABLE_LR = 0.25


def warmup_too_high(steps: int = 400, **kw) -> CaseRun:
    """A linear warm-up whose peak lies past the divergence point: the loss falls while the
    learning rate is small, then climbs once it passes the stable range (onset: the first step
    whose learning rate exceeds the largest stable one: at a constant learning rate this setup
    trains at 0.2 and blows up at 0.3)."""
    torch.manual_seed(3)
    x, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    peak, warm = 2.0, 400
    lr_at = lambda s: 0.01 + (peak - 0.01) * min(s, warm) / warm
    onset = next(s for s in range(steps) if lr_at(s) > STABLE_LR)
    return _loop("warmup_too_high", model, opt, nn.CrossEntropyLoss(), batches(x, y, 64), steps, onset,
                 lambda s: _set_lr(opt, lr_at(s)), **kw)


def log_of_zero(steps: int = 400, **kw) -> CaseRun:
    """Seed 003 "the logarithm of 0": the log of softmax probabilities without a clip. After a learning
    rate raised at step 200, a right class's probability underflows to exactly 0 and the loss is inf."""
    torch.manual_seed(4)
    x, y = blobs()
    model = mlp(softmax=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    onset = 200
    return _loop("log_of_zero (seed 003)", model, opt, lambda p, t: probability_nll(p, t, None), batches(x, y, 64), steps,
                 onset, lambda s: _set_lr(opt, 0.05 if s < onset else 20.0), **kw)


def corrupt_batch(steps: int = 300, **kw) -> CaseRun:
    """A data shard with a NaN feature from step 150 on (a broken preprocessing step): the first
    Linear layer's output turns NaN and the weights follow after one update."""
    torch.manual_seed(11)
    x, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    onset = 150
    clean = batches(x, y, 64)

    def data():
        for step in range(steps):
            xb, yb = next(clean)
            if step >= onset:
                xb = xb.clone()
                xb[0, 3] = float("nan")
            yield xb, yb

    return _loop("corrupt_batch", model, opt, nn.CrossEntropyLoss(), data(), steps, onset, **kw)


# -- sound runs -------------------------------------------------------------------------------

def noisy(steps: int = 600, **kw) -> CaseRun:
    """Small batches and 30% wrong labels: a loss full of normal bumps."""
    torch.manual_seed(5)
    x, y = blobs(label_noise=0.3, noise=2.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    return _loop("noisy", model, opt, nn.CrossEntropyLoss(), batches(x, y, 8), steps, None, **kw)


def warm_restarts(steps: int = 600, **kw) -> CaseRun:
    """SGDR: cosine annealing with the learning rate reset to its peak every 100 steps."""
    torch.manual_seed(6)
    x, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=100)
    return _loop("warm_restarts", model, opt, nn.CrossEntropyLoss(), batches(x, y, 64), steps, None,
                 lambda s: sched.step(s), **kw)


def decay_to_zero(steps: int = 600, **kw) -> CaseRun:
    """Adam with the learning rate annealed to ~0 and a loss that reaches ~0 (easy data)."""
    torch.manual_seed(7)
    x, y = blobs(noise=0.3)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    lr_at = lambda s: 3e-3 * 0.5 * (1 + math.cos(math.pi * s / steps)) + 1e-9
    return _loop("decay_to_zero", model, opt, nn.CrossEntropyLoss(), batches(x, y, 64), steps, None,
                 lambda s: _set_lr(opt, lr_at(s)), **kw)


def bf16_cnn(steps: int = 200, **kw) -> CaseRun:
    """A small CNN under bf16 autocast with gradient accumulation (2 micro-batches per step)."""
    torch.manual_seed(8)
    g = torch.Generator().manual_seed(8)
    y = torch.randint(0, CLASSES, (1024,), generator=g)
    x = torch.randn(1024, 3, 8, 8, generator=g) * 0.5
    x[torch.arange(1024), y % 3, (y // 3) * 2 % 8, :] += 2.0  # a learnable class signal
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return _loop("bf16_cnn_accumulation", model, opt, nn.CrossEntropyLoss(), batches(x, y, 32), steps, None,
                 accumulate=2, autocast=torch.bfloat16, **kw)


def frozen_backbone(steps: int = 400, **kw) -> CaseRun:
    """Only the head trains: the backbone's parameters have no gradient and are not in the optimizer."""
    torch.manual_seed(9)
    x, y = blobs()
    model = mlp(act=nn.Tanh)
    for p in model[:-1].parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(model[-1].parameters(), lr=0.1)
    return _loop("frozen_backbone", model, opt, nn.CrossEntropyLoss(), batches(x, y, 64), steps, None, **kw)


class TinyTransformer(nn.Module):
    """A one-layer Transformer encoder classifying token sequences (mean-pooled)."""

    def __init__(self, vocab: int = 50, dim: int = 32, classes: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 2, 64, dropout=0.1, batch_first=True), 1)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def transformer_warmup_cosine(steps: int = 300, **kw) -> CaseRun:
    """A sound warm-up: AdamW warmed up linearly to 1e-3 over 50 steps, then cosine to 0 (the
    schedule language models use), on Zipf-distributed tokens whose class is set by a marker token."""
    torch.manual_seed(10)
    g = torch.Generator().manual_seed(10)
    ranks = torch.arange(1, 50, dtype=torch.float)
    tokens = torch.multinomial((1 / ranks).expand(2048, -1), 16, replacement=True, generator=g) + 1
    y = torch.randint(0, 4, (2048,), generator=g)
    tokens[:, 3] = 45 + y  # the class marker
    model = TinyTransformer()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warm = 50
    lr_at = lambda s: 1e-3 * (s + 1) / warm if s < warm else 1e-3 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm)))
    return _loop("transformer_warmup_cosine", model, opt, nn.CrossEntropyLoss(), batches(tokens, y, 32), steps, None,
                 lambda s: _set_lr(opt, lr_at(s)), **kw)


FAULTS = (collapse_pinned, accuracy_to_chance, warmup_too_high, log_of_zero, corrupt_batch)
SOUND = (noisy, warm_restarts, decay_to_zero, bf16_cnn, frozen_backbone, transformer_warmup_cosine)
