"""95% of the labels are class 0 and nothing weights the loss or resamples (seed 002)."""
from torch import nn

from _zoo_common import imbalanced_blobs, mlp

EXPECT_FAIL = ["class_balance"]
EXPECT_CAUSE = "class_imbalance"


def build_model():
    return mlp(classes=2)


def build_dataset():
    return imbalanced_blobs((486, 26))


loss_fn = nn.CrossEntropyLoss()
