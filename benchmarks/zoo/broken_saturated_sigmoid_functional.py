"""torch.sigmoid in forward after layers drawn with std 2: the sigmoid units are pinned at 0/1."""
import torch
from torch import nn

from _zoo_common import binary

EXPECT_FAIL = ["saturation"]
EXPECT_CAUSE = "saturated_activations"


class SigmoidNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 1)
        for layer in (self.fc1, self.fc2):
            nn.init.normal_(layer.weight, std=2.0)

    def forward(self, x):
        h = torch.sigmoid(self.fc1(x))
        h = torch.sigmoid(self.fc2(h))
        return self.out(h)


def build_model():
    return SigmoidNet()


def build_dataset():
    return binary()


loss_fn = nn.BCEWithLogitsLoss()
