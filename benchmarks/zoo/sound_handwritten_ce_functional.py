"""A hand-written cross-entropy done right (log_softmax + gather) on a model using functional
F.gelu in forward and a tanh hidden layer."""
import torch.nn.functional as F
from torch import nn

from _zoo_common import blobs


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        h = F.gelu(self.fc1(x))
        h = F.tanh(self.fc2(h))
        return self.out(h)


EXPECT_FAIL = []


def build_model():
    return FunctionalNet()


def build_dataset():
    return blobs()


def loss_fn(logits, labels):
    return -F.log_softmax(logits, dim=1).gather(1, labels[:, None]).mean()
