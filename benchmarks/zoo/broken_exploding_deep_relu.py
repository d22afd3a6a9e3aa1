"""A 20-layer plain ReLU MLP with weights 2.5x the He scale: activations and gradients grow by
orders of magnitude with depth."""
from torch import nn

from _zoo_common import blobs, deep_mlp

EXPECT_FAIL = ["activation_variance", "gradient_flow"]
EXPECT_CAUSE = "exploding_gradients"


def build_model():
    net = deep_mlp(20)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=2.5 * (2.0 / layer.in_features) ** 0.5)
            nn.init.zeros_(layer.bias)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
