"""The classifier layer is initialized 50x too large: confident wrong guesses at step 0, an
initial loss far above ln(10)."""
import torch
from torch import nn

from _zoo_common import images, small_cnn

EXPECT_FAIL = ["initial_loss"]
EXPECT_CAUSE = "bad_init"


def build_model():
    net = small_cnn()
    with torch.no_grad():
        net[-1].weight.mul_(50.0)
    return net


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
