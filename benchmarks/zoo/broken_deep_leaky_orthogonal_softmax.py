"""Seed 002's 30-layer LeakyReLU net with orthogonal init and a softmax output layer, trained with
CrossEntropyLoss on top of the softmax."""
from torch import nn

from _zoo_common import blobs, deep_mlp

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "softmax_before_ce"


def build_model():
    net = deep_mlp(30, width=64, act=lambda: nn.LeakyReLU(0.01))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=nn.init.calculate_gain("leaky_relu", 0.01))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(net, nn.Softmax(dim=1))


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
