"""A linear-output ReLU MLP for regression with MSELoss, targets of matching shape (B, 1)."""
from torch import nn

from _zoo_common import regression

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def build_dataset():
    return regression()


loss_fn = nn.MSELoss()
