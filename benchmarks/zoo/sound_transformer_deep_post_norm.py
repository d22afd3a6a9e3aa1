"""A deeper (6-layer) post-norm transformer encoder, Adam 5e-4: sound, though post-norm stacks
have larger gradient ratios between layers than pre-norm ones."""
import torch
from torch import nn

from _zoo_common import tokens


class PostNormTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x))[:, 0])


EXPECT_FAIL = []


def build_model():
    return PostNormTransformer()


def build_dataset():
    return tokens()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=5e-4)


loss_fn = nn.CrossEntropyLoss()
