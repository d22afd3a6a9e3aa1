"""One class holds 300 images, each of the other nine 20: a 15:1 imbalance, unmitigated."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import images, small_cnn

EXPECT_FAIL = ["class_balance"]
EXPECT_CAUSE = "class_imbalance"


def build_model():
    return small_cnn()


def build_dataset():
    x, y = images(n=480).tensors
    keep = torch.cat([torch.nonzero(y == 0).flatten()] + [torch.nonzero(y == k).flatten()[:20] for k in range(1, 10)])
    extra = torch.nonzero(y == 0).flatten().repeat(7)[: 300 - int((y == 0).sum())]
    order = torch.cat([keep, extra])
    order = order[torch.randperm(len(order), generator=torch.Generator().manual_seed(0))]
    return TensorDataset(x[order], y[order])


loss_fn = nn.CrossEntropyLoss()
