"""An explicit L2 penalty (lambda = 1) reported through `regularization(model)`: it is 40x the data
loss at init."""
from torch import nn

from _zoo_common import blobs

EXPECT_FAIL = ["regularization_ratio"]
EXPECT_CAUSE = "strong_regularization"


def build_model():
    return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 4))


def build_dataset():
    return blobs()


def regularization(model):
    return 1.0 * sum((p ** 2).sum() for name, p in model.named_parameters() if name.endswith("weight"))


loss_fn = nn.CrossEntropyLoss()
