"""A binary classifier emitting one raw logit into BCEWithLogitsLoss, with dropout."""
from torch import nn

from _zoo_common import binary

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))


def build_dataset():
    return binary()


loss_fn = nn.BCEWithLogitsLoss()
