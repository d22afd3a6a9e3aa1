"""A small transformer language model with a causal mask, trained on next-token prediction
(labels are the inputs shifted by one) over Zipf-distributed tokens: the token frequencies are a
language's, not an imbalanced classification dataset."""
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from _zoo_common import TokenLM, zipf_token_sequences

EXPECT_FAIL = []


def build_model():
    return TokenLM(causal=True)


def build_dataset():
    ids = zipf_token_sequences()
    return TensorDataset(ids[:, :-1], ids[:, 1:])


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
