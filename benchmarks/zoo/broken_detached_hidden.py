"""A stray .detach() between the body and the head: the body never gets a gradient."""
from torch import nn

from _zoo_common import images


class DetachedCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.body(x).flatten(1).detach())


EXPECT_FAIL = ["gradient_flow"]
EXPECT_CAUSE = "broken_gradient_path"


def build_model():
    return DetachedCNN()


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
