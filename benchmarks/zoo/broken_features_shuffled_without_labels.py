"""The features are shuffled on their own before training (x = x[perm] without y = y[perm]): every
label now sits beside another sample's input, so nothing about the input predicts it. The model
still memorizes its training samples; only held-out samples show the labels carry no signal."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["label_signal"]
EXPECT_CAUSE = "labels_detached_from_inputs"


def build_model():
    return mlp()


def build_dataset():
    x, y = blobs().tensors
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    return TensorDataset(x[perm], y)  # the bug: y is not permuted with x


loss_fn = nn.CrossEntropyLoss()
