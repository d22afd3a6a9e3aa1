"""Regression of targets around 50 through torch.sigmoid in forward, with a hand-written MSE."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import regression

EXPECT_FAIL = ["output_head", "overfit_small_batch"]
EXPECT_CAUSE = "bounded_regression"


class SigmoidRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def build_model():
    return SigmoidRegressor()


def build_dataset():
    x, y = regression(scale=20.0).tensors
    return TensorDataset(x, y + 50.0)


def loss_fn(prediction, target):
    return ((prediction - target) ** 2).mean()
