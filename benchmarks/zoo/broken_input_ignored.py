"""forward returns a learned constant and never uses its input (seed 004: "predicts the same value
for every input")."""
import torch
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["input_dependence"]
EXPECT_CAUSE = "input_ignored"


class ConstantModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(20, 64)
        self.head = nn.Linear(64, 4)
        self.hidden = nn.Parameter(torch.randn(64) * 0.1)

    def forward(self, x):
        return self.head(torch.relu(self.hidden)).expand(x.shape[0], -1)


def build_model():
    return ConstantModel()


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
