"""Seed 004: L2 regularization of strength 1 (weight_decay=1) on a small sigmoid net: the
penalty dwarfs the data loss and drives the weights to zero."""
import torch
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["regularization_ratio"]
EXPECT_CAUSE = "strong_regularization"


def build_model():
    return nn.Sequential(nn.Linear(20, 128), nn.Sigmoid(), nn.Linear(128, 64), nn.Sigmoid(), nn.Linear(64, 4))


def build_dataset():
    return blobs()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=0.1, weight_decay=1.0)


loss_fn = nn.CrossEntropyLoss()
