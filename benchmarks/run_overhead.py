"""How much `nndoctor run`'s observation slows the user's own training steps.

Runs the same training loop (a small CNN and a small transformer on synthetic data, CPU) in this
process twice per round: plain, and under the observer (nndoctor.observer.observe, which runs this
file as a script). Each run writes the median time of its steady steps (after a warm-up) from a
`finally` block, which also runs when the observer stops the script. Prints the observed/unobserved
ratio per model (target: at most 1.10).

    python benchmarks/run_overhead.py [--steps 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import runpy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

WARMUP = 10


def build(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 8 * 8, 10),
        )
        return model, torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, num_layers=2), nn.Flatten(), nn.Linear(32 * 64, 10))
    return model, torch.randn(32, 32, 64), torch.randint(0, 10, (32,))


def train(kind: str, steps: int, out: Path) -> None:
    model, x, y = build(kind)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    times: list[float] = []
    try:
        for _ in range(steps):
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    finally:
        out.write_text(str(statistics.median(times[WARMUP:])))


def measure(kind: str, steps: int, observed: bool) -> float:
    from nndoctor.observer import observe

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "median.txt"
        args = ["--train", kind, "--out", str(out), "--steps", str(steps + 1000 if observed else steps)]
        if observed:
            observe(Path(__file__), args, steps=steps)
        else:
            saved = sys.argv[:]
            sys.argv = [__file__, *args]
            try:
                runpy.run_path(__file__, run_name="__main__")
            finally:
                sys.argv = saved
        return float(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.train:
        train(args.train, args.steps, args.out)
        return
    torch.set_num_threads(1)
    for kind in ("cnn", "transformer"):
        plain, watched = [], []
        for _ in range(args.rounds):  # alternate, so load changes on a shared machine hit both alike
            plain.append(measure(kind, args.steps, observed=False))
            watched.append(measure(kind, args.steps, observed=True))
        p, w = statistics.median(plain), statistics.median(watched)
        print(f"{kind:12s} step {p * 1e3:7.2f} ms unobserved, {w * 1e3:7.2f} ms observed: ratio {w / p:.3f}")


if __name__ == "__main__":
    main()
