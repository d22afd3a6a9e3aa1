"""Sigmoid output for 10 classes into CrossEntropyLoss: logits squashed into (0, 1) (seed 004)."""
from torch import nn

from _zoo_common import images

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "squashed_logits"


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 10), nn.Sigmoid())


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
