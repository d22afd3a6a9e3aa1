"""A small transformer encoder trained with Adam at lr=0.5 (the usual is 1e-4..1e-3)."""
import torch
from torch import nn

from _zoo_common import TransformerClassifier, tokens

EXPECT_FAIL = ["lr_range"]
EXPECT_CAUSE = "lr_too_high"


def build_model():
    return TransformerClassifier()


def build_dataset():
    return tokens()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=0.5)


loss_fn = nn.CrossEntropyLoss()
