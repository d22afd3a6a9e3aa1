"""Regression through a tanh output while the targets reach +-10: the output cannot get there
(seed 004)."""
from torch import nn

from _zoo_common import regression

EXPECT_FAIL = ["output_head", "overfit_small_batch"]
EXPECT_CAUSE = "bounded_regression"


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1), nn.Tanh())


def build_dataset():
    return regression(scale=10.0)


loss_fn = nn.MSELoss()
