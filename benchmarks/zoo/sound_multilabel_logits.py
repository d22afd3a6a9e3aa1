"""A multi-label head (5 independent labels) of raw logits into BCEWithLogitsLoss."""
from torch import nn

from _zoo_common import multilabel

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))


def build_dataset():
    return multilabel()


loss_fn = nn.BCEWithLogitsLoss()
