"""A sequence model that uses view() instead of permute() to go from (B, L, D) to (L, B, D):
samples of the batch get mixed together (Karpathy)."""
from torch import nn

from _zoo_common import tokens

EXPECT_FAIL = ["batch_independence"]
EXPECT_CAUSE = "batch_mixing"


class ViewGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.rnn = nn.GRU(32, 32)  # time-major
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        h = self.embed(x)
        batch, length, dim = h.shape
        out, _ = self.rnn(h.view(length, batch, dim))  # should be h.permute(1, 0, 2)
        return self.head(out[-1])


def build_model():
    return ViewGRU()


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
