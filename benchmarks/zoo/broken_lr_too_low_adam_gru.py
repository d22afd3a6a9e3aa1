"""Adam with lr=1e-7 on a GRU over tokens."""
import torch
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = ["update_ratio", "overfit_small_batch"]
EXPECT_CAUSE = "lr_too_low"


def build_model():
    return RecurrentClassifier(nn.GRU)


def build_dataset():
    return tokens()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1e-7)


loss_fn = nn.CrossEntropyLoss()
