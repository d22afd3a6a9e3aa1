"""A 12-block pre-norm residual MLP (LayerNorm, ReLU): deep, and sound because of the residuals."""
from torch import nn

from _zoo_common import blobs


class ResidualMLP(nn.Module):
    def __init__(self, dim=20, width=64, blocks=12, classes=4):
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)) for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, classes))

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


EXPECT_FAIL = []


def build_model():
    return ResidualMLP()


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
