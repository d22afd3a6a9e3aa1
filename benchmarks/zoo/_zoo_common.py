"""Synthetic data and building blocks shared by the zoo's model files.

Every dataset is generated here from a fixed seed (nothing is downloaded), small (<= 512 samples)
and learnable, so that a sound model on it is genuinely sound and a broken one is broken only by
the bug its file names. Model files import this module (it lies beside them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def standardize(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)) / x.std(0)


def blob_features(n: int = 512, dim: int = 20, classes: int = 4, seed: int = 0, labels: torch.Tensor | None = None):
    """Unstandardized blob features: each sample is its class's center plus unit noise."""
    g = _gen(seed)
    y = torch.arange(n) % classes if labels is None else labels
    centers = torch.randn(classes, dim, generator=g) * 0.8
    return centers[y] + torch.randn(n, dim, generator=g), y


def blobs(n: int = 512, dim: int = 20, classes: int = 4, seed: int = 0) -> TensorDataset:
    x, y = blob_features(n, dim, classes, seed)
    return TensorDataset(standardize(x), y)


def imbalanced_blobs(counts: tuple[int, ...], dim: int = 20, seed: int = 0) -> TensorDataset:
    """Blobs with the given number of samples per class (interleaved so every batch sees the mix)."""
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=_gen(seed + 1))]
    x, y = blob_features(len(labels), dim, len(counts), seed, labels=labels)
    return TensorDataset(standardize(x), y)


def image_tensors(n: int = 256, channels: int = 3, size: int = 16, classes: int = 10, seed: int = 0):
    """Images in [0, 1] whose class is the position of a bright patch, plus noise."""
    g = _gen(seed)
    y = torch.arange(n) % classes
    x = 0.3 + 0.1 * torch.rand(n, channels, size, size, generator=g)
    cells = size // 4
    for i in range(n):
        row, col = divmod(int(y[i]) % (cells * cells), cells)
        x[i, :, row * 4:row * 4 + 4, col * 4:col * 4 + 4] += 0.5
    return x.clamp(0, 1), y


def images(n: int = 256, channels: int = 3, size: int = 16, classes: int = 10, seed: int = 0) -> TensorDataset:
    x, y = image_tensors(n, channels, size, classes, seed)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True)
    return TensorDataset((x - mean) / std, y)


def tokens(n: int = 256, length: int = 12, vocab: int = 50, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Integer token sequences; the class is which band of the vocabulary fills the first half."""
    g = _gen(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, vocab, (n, length), generator=g)
    band = vocab // classes
    for i in range(n):
        x[i, : length // 2] = torch.randint(int(y[i]) * band, (int(y[i]) + 1) * band, (length // 2,), generator=g)
    return TensorDataset(x, y)


def regression(n: int = 512, dim: int = 8, scale: float = 2.0, seed: int = 0) -> TensorDataset:
    """Smooth nonlinear targets of shape (n, 1), roughly in [-scale, scale]."""
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.randn(dim, 1, generator=g) / dim ** 0.5
    y = torch.tanh(x @ w * 2) * scale + 0.05 * scale * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def binary(n: int = 512, dim: int = 10, seed: int = 0, positive_share: float = 0.5) -> TensorDataset:
    """Float 0/1 targets of shape (n, 1) from a linear rule whose threshold sets the positive share."""
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g)
    score = x[:, :1] + 0.5 * x[:, 1:2]
    cut = torch.quantile(score, 1 - positive_share)
    return TensorDataset(x, (score > cut).float())


def multilabel(n: int = 512, dim: int = 16, labels: int = 5, seed: int = 0) -> TensorDataset:
    """Several independent 0/1 labels per sample, each a linear rule of the features."""
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.randn(dim, labels, generator=g)
    return TensorDataset(x, (x @ w > 0).float())


def mlp(dim: int = 20, classes: int = 4, hidden: int = 64, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, classes))


def deep_mlp(depth: int, dim: int = 20, width: int = 64, classes: int = 4, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(dim, width), act()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def small_cnn(channels: int = 3, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, classes),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


class ResidualCNN(nn.Module):
    """A small ResNet: stem, residual blocks, global pooling, linear head."""

    def __init__(self, channels: int = 3, classes: int = 10, width: int = 16, blocks: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class RecurrentClassifier(nn.Module):
    def __init__(self, cell: type[nn.Module] = nn.GRU, vocab: int = 50, classes: int = 3, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = cell(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out[:, -1])


class TransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 50, classes: int = 3, dim: int = 32, layers: int = 2, batch_first: bool = True):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.1,
                                           batch_first=batch_first, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def zipf_token_sequences(n: int = 256, length: int = 17, vocab: int = 100, seed: int = 0) -> torch.Tensor:
    """(n, length) token ids with a language's statistics: unigram frequencies follow Zipf's law
    (rank r drawn with probability ~ 1/r) and the next token is mostly a fixed function of the
    previous one, so a language model has something to learn beyond the unigram."""
    g = _gen(seed)
    ranks = torch.arange(1, vocab + 1, dtype=torch.float64)
    zipf = (1 / ranks) / (1 / ranks).sum()
    successor = torch.multinomial(zipf, vocab, replacement=True, generator=g)  # keeps the Zipf shape
    ids = torch.empty(n, length, dtype=torch.long)
    ids[:, 0] = torch.multinomial(zipf, n, replacement=True, generator=g)
    for t in range(1, length):
        follow = torch.rand(n, generator=g) < 0.7
        ids[:, t] = torch.where(follow, successor[ids[:, t - 1]], torch.multinomial(zipf, n, replacement=True, generator=g))
    return ids


class TokenLM(nn.Module):
    """A small transformer language model: logits (batch, length, vocab) for every position.
    ``causal=False`` leaves out the attention mask, so position t sees the tokens after it."""

    def __init__(self, vocab: int = 100, dim: int = 32, layers: int = 2, length: int = 16, causal: bool = True):
        super().__init__()
        self.causal = causal
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x):
        length = x.shape[1]
        h = self.embed(x) + self.position[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device) if self.causal else None
        return self.head(self.encoder(h, mask=mask, is_causal=self.causal))


class SinusoidalTransformerClassifier(TransformerClassifier):
    """TransformerClassifier with the sinusoidal positional encoding of the PyTorch tutorial, whose
    table is (max_len, 1, dim) for sequence-first tensors. ``index_by_batch`` keeps the tutorial's
    ``pe[:x.size(0)]`` on batch-first tensors: sample i gets the encoding of position i."""

    def __init__(self, index_by_batch: bool, max_len: int = 5000, dim: int = 32, **kwargs):
        super().__init__(dim=dim, **kwargs)
        self.index_by_batch = index_by_batch
        position = torch.arange(max_len).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, dim, 2) * (-torch.log(torch.tensor(10000.0)) / dim))
        pe = torch.zeros(max_len, 1, dim)
        pe[:, 0, 0::2] = torch.sin(position * frequency)
        pe[:, 0, 1::2] = torch.cos(position * frequency)
        self.register_buffer("pe", pe)

    def forward(self, x):
        h = self.embed(x)  # (batch, length, dim)
        if self.index_by_batch:
            h = h + self.pe[: h.size(0)]  # (batch, 1, dim): one encoding per sample, not per position
        else:
            h = h + self.pe[: h.size(1)].transpose(0, 1)  # (1, length, dim)
        return self.head(self.encoder(h).mean(dim=1))
