"""An LSTM over integer tokens, AdamW with the usual weight decay 1e-2."""
import torch
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = []


def build_model():
    return RecurrentClassifier(nn.LSTM)


def build_dataset():
    return tokens()


def build_optimizer(params):
    return torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-2)


loss_fn = nn.CrossEntropyLoss()
