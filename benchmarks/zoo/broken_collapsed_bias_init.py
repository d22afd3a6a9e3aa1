"""The final bias of class 0 starts at +12 and SGD is slow: every prediction goes to class 0
while the labels are balanced."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["initial_loss", "prediction_collapse"]
EXPECT_CAUSE = "bad_init"


def build_model():
    net = mlp()
    with torch.no_grad():
        net[-1].bias.zero_()
        net[-1].bias[0] = 12.0
    return net


def build_dataset():
    return blobs()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=1e-3)


loss_fn = nn.CrossEntropyLoss()
