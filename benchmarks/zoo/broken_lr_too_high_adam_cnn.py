"""Adam with lr=1 on a CNN without normalization: the first steps throw the weights so far that
the ReLUs die and training stays at chance (measured: mini-batch training never leaves chance,
while lr 0.03 reaches 100% held-out accuracy). With batch norm the same rate trains, because
normalization cancels the weight growth: that setup is not broken, so it is not this case."""
import torch
from torch import nn

from _zoo_common import images

EXPECT_FAIL = ["lr_range"]
EXPECT_CAUSE = "lr_too_high"


def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, 10),
    )


def build_dataset():
    return images()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1.0)


loss_fn = nn.CrossEntropyLoss()
