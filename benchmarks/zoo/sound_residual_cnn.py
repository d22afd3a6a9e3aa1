"""A small ResNet (stem + 3 residual blocks with batch norm, functional relu) on 16x16 images."""
from torch import nn

from _zoo_common import ResidualCNN, images

EXPECT_FAIL = []


def build_model():
    return ResidualCNN()


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
