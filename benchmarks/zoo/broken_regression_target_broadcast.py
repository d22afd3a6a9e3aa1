"""Targets of shape (B,) against an output of shape (B, 1) into MSELoss: it silently broadcasts to
(B, B) and regresses every sample towards the batch mean."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import regression

EXPECT_FAIL = ["data_integrity"]
EXPECT_CAUSE = "bad_data"


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def build_dataset():
    x, y = regression().tensors
    return TensorDataset(x, y.squeeze(1))


loss_fn = nn.MSELoss()
