"""The model and data cast to float16 ("half precision saves memory") and trained with Adam's
default eps=1e-8, which is 0 in float16: the first step divides by zero and the weights turn NaN."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["precision"]
EXPECT_CAUSE = "fp16_precision"


def build_model():
    return mlp().half()


def build_dataset():
    x, y = blobs().tensors
    return TensorDataset(x.half(), y)


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1e-3)


loss_fn = nn.CrossEntropyLoss()
