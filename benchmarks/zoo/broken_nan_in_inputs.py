"""A few feature values are NaN (a missing value left in by the preprocessing)."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["data_integrity"]
EXPECT_CAUSE = "bad_data"


def build_model():
    return mlp()


def build_dataset():
    x, y = blobs().tensors
    x = x.clone()
    x[[13, 77, 301], 5] = float("nan")
    return TensorDataset(x, y)


loss_fn = nn.CrossEntropyLoss()
