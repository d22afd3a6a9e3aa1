"""Binary targets coded as -1/+1 (SVM style) into BCEWithLogitsLoss, which wants 0/1."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import binary

EXPECT_FAIL = ["data_integrity"]
EXPECT_CAUSE = "bad_data"


def build_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def build_dataset():
    x, y = binary().tensors
    return TensorDataset(x, y * 2 - 1)


loss_fn = nn.BCEWithLogitsLoss()
