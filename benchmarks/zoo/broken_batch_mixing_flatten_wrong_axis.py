"""A CNN that flattens its feature maps with x.view(-1, B) (axes swapped) before the head: each
output row mixes features of every sample."""
from torch import nn

from _zoo_common import images


class WrongFlattenCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        h = self.features(x)
        return self.head(h.view(-1, x.shape[0]).t().reshape(x.shape[0], -1))


EXPECT_FAIL = ["batch_independence"]
EXPECT_CAUSE = "batch_mixing"


def build_model():
    return WrongFlattenCNN()


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
