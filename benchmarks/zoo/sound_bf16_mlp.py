"""The same MLP in bfloat16 under Adam's default eps=1e-8: bfloat16 has float32's exponent range,
so eps survives and nothing overflows (a trap for a float16-minded check)."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blobs, mlp

EXPECT_FAIL = []


def build_model():
    return mlp().to(torch.bfloat16)


def build_dataset():
    x, y = blobs().tensors
    return TensorDataset(x.to(torch.bfloat16), y)


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1e-3)


loss_fn = nn.CrossEntropyLoss()
