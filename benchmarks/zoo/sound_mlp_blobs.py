"""A plain two-hidden-layer ReLU MLP on standardized features, Adam 1e-3: the textbook setup."""
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = []


def build_model():
    return mlp()


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
