"""Sound models and synthetic datasets shared by the tests.

Every check's test file imports its sound cases from here (and keeps its broken ones beside the
test), so that each check is shown to pass on the same varied set of healthy architectures:
MLP, CNN, GRU sequence model over integer tokens, transformer encoder, regression, binary.
Data is synthetic, standardized and learnable; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset


@dataclass
class Case:
    name: str
    model: nn.Module
    dataset: Any
    loss_fn: Any = None
    optimizer: Callable | None = None
    task: str | None = None
    kwargs: dict = field(default_factory=dict)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(n: int = 512, dim: int = 20, classes: int = 4, seed: int = 0) -> TensorDataset:
    """Balanced classes: each sample is its class's random center plus unit noise, standardized."""
    g = _gen(seed)
    y = torch.arange(n) % classes
    centers = torch.randn(classes, dim, generator=g) * 0.6
    x = centers[y] + torch.randn(n, dim, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    return TensorDataset(x, y)


def images(n: int = 256, channels: int = 3, size: int = 16, classes: int = 10, seed: int = 0) -> TensorDataset:
    """Standardized images whose class is a bright patch position plus noise."""
    g = _gen(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, channels, size, size, generator=g) * 0.5
    for i in range(n):
        row, col = divmod(int(y[i]) * 3 % (size - 4), size - 4)
        x[i, :, row:row + 4, col % (size - 4):col % (size - 4) + 4] += 1.5
    x = (x - x.mean()) / x.std()
    return TensorDataset(x, y)


def tokens(n: int = 256, length: int = 12, vocab: int = 50, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Integer token sequences; the class is which token range dominates."""
    g = _gen(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, vocab, (n, length), generator=g)
    band = vocab // classes
    for i in range(n):
        x[i, : length // 2] = torch.randint(int(y[i]) * band, (int(y[i]) + 1) * band, (length // 2,), generator=g)
    return TensorDataset(x, y)


def regression(n: int = 512, dim: int = 8, seed: int = 0) -> TensorDataset:
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.randn(dim, 1, generator=g)
    y = torch.tanh(x @ w) * 2 + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def binary(n: int = 512, dim: int = 10, seed: int = 0) -> TensorDataset:
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g)
    y = ((x[:, :1] + 0.5 * x[:, 1:2]) > 0).float()
    return TensorDataset(x, y)


def mlp(dim: int = 20, classes: int = 4, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class GRUClassifier(nn.Module):
    def __init__(self, vocab: int = 50, classes: int = 3, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out[:, -1])


class TransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 50, classes: int = 3, dim: int = 32, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class ResidualMLP(nn.Module):
    """Pre-norm residual MLP: deep but sound (the issue's 12-block case)."""

    def __init__(self, dim: int = 20, width: int = 64, blocks: int = 12, classes: int = 4):
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)) for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, classes))

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class Tagger(nn.Module):
    """Per-token classes over padded sequences: output (N, C, L) against labels (N, L) with -100 padding."""

    def __init__(self, vocab: int = 50, classes: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.rnn = nn.LSTM(16, 16, batch_first=True)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0]).transpose(1, 2)


def padded_tags() -> TensorDataset:
    """Token sequences tagged per position, the last three positions padding (-100)."""
    tokens = torch.randint(0, 50, (128, 12), generator=_gen(0))
    tags = tokens % 5
    tags[:, 9:] = -100
    return TensorDataset(tokens, tags)


def sound_cases() -> list[Case]:
    """Healthy setups across architectures and tasks; every check must pass (or skip) each."""
    torch.manual_seed(0)
    return [
        Case("mlp", mlp(), blobs(), nn.CrossEntropyLoss()),
        Case("cnn", SmallCNN(), images(), nn.CrossEntropyLoss()),
        Case("gru_tokens", GRUClassifier(), tokens(), nn.CrossEntropyLoss()),
        Case("transformer_tokens", TransformerClassifier(), tokens(), nn.CrossEntropyLoss()),
        Case("regression", nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)), regression(), nn.MSELoss()),
        Case("binary", nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1)), binary(), nn.BCEWithLogitsLoss()),
        Case("residual_mlp_12", ResidualMLP(), blobs(), nn.CrossEntropyLoss()),
    ]


def sound_case(name: str) -> Case:
    return next(c for c in sound_cases() if c.name == name)
