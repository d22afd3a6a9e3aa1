"""A binary task with 8% positives, mitigated by BCEWithLogitsLoss(pos_weight=negatives/positives)."""
import torch
from torch import nn

from _zoo_common import binary

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def build_dataset():
    return binary(positive_share=0.08)


loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.92 / 0.08]))
