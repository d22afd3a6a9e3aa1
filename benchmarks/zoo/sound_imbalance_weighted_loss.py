"""A 19:1 imbalance mitigated the standard way: CrossEntropyLoss weighted by inverse class
frequency (seed 002)."""
import torch
from torch import nn

from _zoo_common import imbalanced_blobs, mlp

EXPECT_FAIL = []
COUNTS = (486, 26)


def build_model():
    return mlp(classes=2)


def build_dataset():
    return imbalanced_blobs(COUNTS)


loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([sum(COUNTS) / (2 * c) for c in COUNTS]))
