"""A multi-label head with a functional sigmoid in forward and BCELoss."""
import torch
from torch import nn

from _zoo_common import multilabel

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "sigmoid_bce"


class MultiLabelNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 5))

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def build_model():
    return MultiLabelNet()


def build_dataset():
    return multilabel()


loss_fn = nn.BCELoss()
