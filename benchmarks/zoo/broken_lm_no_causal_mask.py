"""The same language model without its causal mask: position t attends to the token it must
predict (the input at t + 1), copies it, and cannot generate."""
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from _zoo_common import TokenLM, zipf_token_sequences

EXPECT_FAIL = ["causal_dependence"]
EXPECT_CAUSE = "future_leak"


def build_model():
    return TokenLM(causal=False)


def build_dataset():
    ids = zipf_token_sequences()
    return TensorDataset(ids[:, :-1], ids[:, 1:])


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
