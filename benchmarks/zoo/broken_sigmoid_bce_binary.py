"""Sigmoid + BCELoss instead of BCEWithLogitsLoss: the log of saturated probabilities."""
from torch import nn

from _zoo_common import binary

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "sigmoid_bce"


def build_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())


def build_dataset():
    return binary()


loss_fn = nn.BCELoss()
