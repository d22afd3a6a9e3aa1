"""Hidden biases initialized at -5: almost every ReLU unit is off for every input (seed 002)."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["dead_relu"]
EXPECT_CAUSE = "dead_relus"


def build_model():
    net = mlp()
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.bias.fill_(-5.0)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
