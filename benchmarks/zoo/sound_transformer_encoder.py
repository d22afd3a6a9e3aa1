"""A 2-layer pre-norm transformer encoder (dropout 0.1) over integer tokens, mean-pooled."""
from torch import nn

from _zoo_common import TransformerClassifier, tokens

EXPECT_FAIL = []


def build_model():
    return TransformerClassifier()


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
