"""A CNN with batch norm and dropout before the head, SGD with momentum."""
import torch
from torch import nn

from _zoo_common import images

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def build_dataset():
    return images()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


loss_fn = nn.CrossEntropyLoss()
