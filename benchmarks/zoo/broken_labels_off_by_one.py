"""Labels 1..10 for a 10-way head (MATLAB-style 1-based labels): label 10 is out of range and
class 0 never appears (seed 001)."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import images, small_cnn

EXPECT_FAIL = ["data_integrity"]
EXPECT_CAUSE = "bad_data"


def build_model():
    return small_cnn()


def build_dataset():
    x, y = images().tensors
    return TensorDataset(x, y + 1)


loss_fn = nn.CrossEntropyLoss()
