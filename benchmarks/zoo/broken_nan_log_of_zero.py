"""log(softmax(x)) written by hand on confident logits: softmax underflows to exactly 0 and the
loss becomes inf, then NaN (seeds 001/003)."""
import torch
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["numerics"]
EXPECT_CAUSE = "numerics"


class ConfidentNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
        with torch.no_grad():
            self.body[2].weight.mul_(300.0)

    def forward(self, x):
        return self.body(x)


def build_model():
    return ConfidentNet()


def build_dataset():
    return blobs()


def loss_fn(logits, labels):
    probabilities = torch.softmax(logits, dim=1)
    return -torch.log(probabilities[torch.arange(len(labels)), labels]).mean()
