"""SGD with lr=1e-6: updates are ~1e-7 of the weights, nothing is learned in any sane budget."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["update_ratio", "overfit_small_batch"]
EXPECT_CAUSE = "lr_too_low"


def build_model():
    return mlp()


def build_dataset():
    return blobs()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=1e-6)


loss_fn = nn.CrossEntropyLoss()
