"""A 20-layer tanh MLP drawn with std 0.3x Glorot: activations shrink towards 0 layer by layer
(CS231n's small-random-numbers example)."""
from torch import nn

from _zoo_common import blobs, deep_mlp

EXPECT_FAIL = ["activation_variance", "gradient_flow"]
EXPECT_CAUSE = "vanishing_gradients"


def build_model():
    net = deep_mlp(20, act=nn.Tanh)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=0.3 * (1.0 / layer.in_features) ** 0.5)
            nn.init.zeros_(layer.bias)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
