"""Softmax as the last layer before CrossEntropyLoss: the loss applies log-softmax again, so it
gets probabilities instead of logits (seeds 000/001/003)."""
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "softmax_before_ce"


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4), nn.Softmax(dim=1))


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
