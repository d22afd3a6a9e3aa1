"""A TransformerEncoder built with batch_first=False but fed (batch, length, dim): attention runs
across the samples of the batch."""
from torch import nn

from _zoo_common import TransformerClassifier, tokens

EXPECT_FAIL = ["batch_independence"]
EXPECT_CAUSE = "batch_mixing"


def build_model():
    return TransformerClassifier(batch_first=False)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
