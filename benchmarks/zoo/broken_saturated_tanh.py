"""A tanh MLP initialized with weights 10x too large: pre-activations sit far in the flat tails
(seed 002)."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["saturation"]
EXPECT_CAUSE = "saturated_activations"


def build_model():
    net = mlp(act=nn.Tanh)
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.mul_(10.0)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
