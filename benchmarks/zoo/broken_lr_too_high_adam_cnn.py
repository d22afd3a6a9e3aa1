"""Adam with lr=1 on a batch-norm CNN: each step throws the weights around."""
import torch
from torch import nn

from _zoo_common import images, small_cnn

EXPECT_FAIL = ["lr_range"]
EXPECT_CAUSE = "lr_too_high"


def build_model():
    return small_cnn()


def build_dataset():
    return images()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1.0)


loss_fn = nn.CrossEntropyLoss()
