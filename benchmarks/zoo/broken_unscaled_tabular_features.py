"""Tabular features in their raw units (prices around 5000, spread 2000) into a tanh MLP."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blob_features

EXPECT_FAIL = ["input_normalization"]
EXPECT_CAUSE = "unnormalized_inputs"


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 4))


def build_dataset():
    x, y = blob_features()
    return TensorDataset(5000.0 + 2000.0 * x, y)


loss_fn = nn.CrossEntropyLoss()
