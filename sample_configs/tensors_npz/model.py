"""A GRU over integer tokens for tokens.npz: x (512, 16) int32 token ids (read as int64), y (512,) classes 0..2."""

import torch
from torch import nn

VOCAB, CLASSES = 40, 3


class TokenGRU(nn.Module):
    def __init__(self, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, tokens):
        states, _ = self.rnn(self.embed(tokens))
        return self.head(states.mean(dim=1))


def build_model() -> nn.Module:
    return TokenGRU()


loss_fn = nn.CrossEntropyLoss()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=3e-3)
