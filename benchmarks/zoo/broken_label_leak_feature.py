"""The target column is left among the input features (feature 7 is the class index itself): the
model learns a shortcut that no test-time input will carry."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["label_signal"]
EXPECT_CAUSE = "label_leak"


def build_model():
    return mlp()


def build_dataset():
    x, y = blobs().tensors
    x = x.clone()
    x[:, 7] = y.float()  # the bug: the label is one of the inputs
    return TensorDataset(x, y)


loss_fn = nn.CrossEntropyLoss()
