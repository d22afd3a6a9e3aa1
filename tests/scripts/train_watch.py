"""A small, sound training script for `nndoctor run --watch`; --corrupt-from N feeds NaN inputs from
step N on (a corrupt shard arriving mid-job)."""

import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=120)
parser.add_argument("--corrupt-from", type=int, default=None)
args = parser.parse_args()

torch.manual_seed(0)
x = torch.randn(512, 10)
y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
for step in range(args.steps):
    rows = torch.randint(0, 512, (32,))
    batch = x[rows].clone()
    if args.corrupt_from is not None and step >= args.corrupt_from:
        batch[0, 0] = float("nan")
    optimizer.zero_grad()
    loss = loss_fn(model(batch), y[rows])
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        print(f"step {step} loss {loss.item():.3f}")
