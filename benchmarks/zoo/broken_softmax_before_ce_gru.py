"""A GRU over integer tokens whose forward returns torch.softmax, fed to CrossEntropyLoss."""
import torch
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "softmax_before_ce"


class SoftmaxGRU(RecurrentClassifier):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=-1)


def build_model():
    return SoftmaxGRU(nn.GRU)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
