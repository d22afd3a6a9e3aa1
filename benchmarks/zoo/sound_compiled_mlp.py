"""torch.compile(model): nndoctor examines the original module (_orig_mod), uncompiled, so no
compile time and no dynamo warnings; the verdicts are those of the plain MLP."""
import torch
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = []


def build_model():
    return torch.compile(mlp())


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
