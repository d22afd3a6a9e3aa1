"""SGD with lr=20 on an MLP: the loss diverges in a few steps (seed 002)."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["lr_range", "overfit_small_batch"]
EXPECT_CAUSE = "lr_too_high"


def build_model():
    return mlp()


def build_dataset():
    return blobs()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=20.0)


loss_fn = nn.CrossEntropyLoss()
