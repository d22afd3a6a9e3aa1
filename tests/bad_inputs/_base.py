"""Shared pieces of the bad-input corpus: a small sound MLP and dataset the cases break one way
each. Not a test module (no test_ prefix): the cases import it."""

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def tensors(n=200):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=generator)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def dataset(n=200):
    return TensorDataset(*tensors(n))


class Wrapped(Dataset):
    """A map-style dataset whose items come from ``item(i)``; subclasses break one thing."""

    def __init__(self, n=200):
        self.x, self.y = tensors(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.item(i)

    def item(self, i):
        return self.x[i], self.y[i]
