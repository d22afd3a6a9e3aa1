"""A tanh MLP whose weights are all the constant 0.05: every hidden unit computes the same thing,
so symmetry is never broken."""
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["weight_init"]
EXPECT_CAUSE = "bad_init"


def build_model():
    net = mlp(act=nn.Tanh)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.constant_(layer.weight, 0.05)
            nn.init.zeros_(layer.bias)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
