"""A hand-written loss returns +log-likelihood instead of -log-likelihood: gradient descent
maximizes the error: the overfit and easy-data curves fall without bound (pattern "rising")."""
import torch.nn.functional as F

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["overfit_small_batch", "easy_data"]
EXPECT_CAUSE = "loss_rewards_errors"


def build_model():
    return mlp()


def build_dataset():
    return blobs()


def loss_fn(logits, labels):
    return F.log_softmax(logits, dim=1).gather(1, labels[:, None]).mean()  # missing minus sign
