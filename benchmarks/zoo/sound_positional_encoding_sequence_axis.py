"""The sinusoidal positional encoding indexed by the sequence axis of batch-first tensors."""
from torch import nn

from _zoo_common import SinusoidalTransformerClassifier, tokens

EXPECT_FAIL = []


def build_model():
    return SinusoidalTransformerClassifier(index_by_batch=False)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
