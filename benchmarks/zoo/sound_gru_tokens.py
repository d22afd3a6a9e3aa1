"""A GRU over integer tokens with an embedding, classifying from the last hidden state."""
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = []


def build_model():
    return RecurrentClassifier(nn.GRU)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
