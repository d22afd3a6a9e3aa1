"""The head emits 10 logits for a 4-class problem (copied from another project)."""
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "output_width"


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
