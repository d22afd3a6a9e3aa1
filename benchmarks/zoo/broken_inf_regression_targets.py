"""Regression targets containing inf (a division by a zero count upstream)."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import regression

EXPECT_FAIL = ["data_integrity"]
EXPECT_CAUSE = "bad_data"


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))


def build_dataset():
    x, y = regression().tensors
    y = y.clone()
    y[[20, 200]] = float("inf")
    return TensorDataset(x, y)


loss_fn = nn.MSELoss()
