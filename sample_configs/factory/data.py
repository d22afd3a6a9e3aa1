"""The factory a data spec calls (kind: factory): any function returning a Dataset of
(input, target) pairs. Its keyword arguments come from the spec's args:."""

import math

import torch
from torch.utils.data import TensorDataset


def two_moons(size: int = 512, noise: float = 0.1, seed: int = 0) -> TensorDataset:
    """Two interleaved half circles, standardized: a small non-linear 2-class problem."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(size) % 2
    angle = torch.rand(size, generator=generator) * math.pi
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    points = torch.where(labels[:, None] == 0, upper, lower) + noise * torch.randn(size, 2, generator=generator)
    points = (points - points.mean(dim=0)) / points.std(dim=0)
    return TensorDataset(points, labels)
