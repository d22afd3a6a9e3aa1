"""The PyTorch tutorial's sinusoidal positional encoding (a (max_len, 1, dim) table indexed with
pe[:x.size(0)]) applied to batch-first tensors: each sample gets the encoding of its place in the
batch instead of one per token position. No sample reads another's inputs."""
from torch import nn

from _zoo_common import SinusoidalTransformerClassifier, tokens

EXPECT_FAIL = ["batch_independence"]
EXPECT_CAUSE = "batch_position"


def build_model():
    return SinusoidalTransformerClassifier(index_by_batch=True)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
