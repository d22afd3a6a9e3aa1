"""What watching costs: the step time of a small CNN and a small transformer with and without
nndoctor.watch at its default setting (heavy statistics every 10th step), printed as the ratio
watched/unwatched. Short blocks of steps alternate between the two and the medians are compared,
so that the noise of a shared machine hits both alike.

    python benchmarks/watch_overhead.py [--steps 20] [--rounds 15] [--sample-every 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import nndoctor  # noqa: E402


def small_cnn():
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


class SmallTransformer(nn.Module):
    def __init__(self, vocab=1000, dim=128, layers=2, classes=10):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 4, 4 * dim, batch_first=True), layers)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def small_transformer():
    return SmallTransformer(), torch.randint(0, 1000, (16, 64)), torch.randint(0, 10, (16,))


def _block(model, opt, x, y, steps: int, watcher) -> float:
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        if watcher is not None:
            watcher.step(loss, y)
        opt.step()
    return (time.perf_counter() - start) / steps


def measure(make, steps: int, rounds: int, sample_every: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model, x, y = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    _block(model, opt, x, y, 10, None)  # warm up allocator and kernels
    plain, watched = [], []
    for _ in range(rounds):
        plain.append(_block(model, opt, x, y, steps, None))
        with nndoctor.watch(model, opt, alerts=False, sample_every=sample_every) as w:
            watched.append(_block(model, opt, x, y, steps, w))
    return statistics.median(plain), statistics.median(watched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per block (a multiple of sample-every)")
    parser.add_argument("--rounds", type=int, default=15, help="alternating watched/unwatched blocks")
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, make in (("small CNN", small_cnn), ("small transformer", small_transformer)):
        plain, watched = measure(make, args.steps, args.rounds, args.sample_every)
        print(f"{name:18} unwatched {1e3 * plain:7.2f} ms/step  watched {1e3 * watched:7.2f} ms/step  "
              f"ratio {watched / plain:.3f} (sample_every={args.sample_every})")


if __name__ == "__main__":
    main()
