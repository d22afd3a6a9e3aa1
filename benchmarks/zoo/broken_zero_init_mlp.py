"""Every weight initialized to zero: hidden units stay identical and get no gradient (seed 004)."""
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["weight_init", "overfit_small_batch", "easy_data"]
EXPECT_CAUSE = "bad_init"


def build_model():
    net = mlp()
    for p in net.parameters():
        nn.init.zeros_(p)
    return net


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
