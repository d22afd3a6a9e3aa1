"""The label column was shuffled against coarse inputs: many identical inputs carry different
labels, so not even 50 samples can be memorized. The model is fine; the data is not."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import mlp

EXPECT_FAIL = ["overfit_small_batch"]
EXPECT_CAUSE = "data_or_labels"


def build_model():
    return mlp(dim=4)


def build_dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (512, 4), generator=g).float()  # only 16 distinct inputs
    y = torch.randint(0, 4, (512,), generator=g)  # labels unrelated to the inputs
    return TensorDataset((x - 0.5) * 2, y)


loss_fn = nn.CrossEntropyLoss()
