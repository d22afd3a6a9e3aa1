"""A 15-layer plain sigmoid MLP (the pre-ReLU era): each layer shrinks the gradient by ~4x, so the
first layers learn nothing."""
from torch import nn

from _zoo_common import blobs, deep_mlp

EXPECT_FAIL = ["gradient_flow"]
EXPECT_CAUSE = "vanishing_gradients"


def build_model():
    return deep_mlp(15, act=nn.Sigmoid)


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
