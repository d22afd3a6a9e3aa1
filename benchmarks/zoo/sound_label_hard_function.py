"""Sound trap for label_signal: the label is a hard but real function of the input, the XOR of the
signs of two of 20 standardized features (no single feature, nor any linear rule, predicts it)."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import mlp

EXPECT_FAIL = []


def build_model():
    return mlp(dim=20, classes=2)


def build_dataset():
    x = torch.randn(512, 20, generator=torch.Generator().manual_seed(0))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    return TensorDataset(x, y)


loss_fn = nn.CrossEntropyLoss()
