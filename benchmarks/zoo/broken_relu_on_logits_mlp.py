"""A ReLU after the last Linear layer: negative logits are clipped to 0 (seed 000)."""
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "squashed_logits"


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4), nn.ReLU())


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
