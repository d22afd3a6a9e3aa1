"""build_optimizer passes only the head's parameters (a fine-tuning snippet copied by mistake):
the first layers are never updated."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["gradient_flow"]
EXPECT_CAUSE = "broken_gradient_path"


def build_model():
    return mlp()


def build_dataset():
    return blobs()


def build_optimizer(params):
    return torch.optim.Adam(list(params)[-2:], lr=1e-3)


loss_fn = nn.CrossEntropyLoss()
