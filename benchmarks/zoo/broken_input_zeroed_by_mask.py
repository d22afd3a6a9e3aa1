"""A padding mask built with the wrong comparison zeroes every token embedding: the GRU only ever
sees zeros."""
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = ["input_dependence"]
EXPECT_CAUSE = "input_ignored"


class MaskedGRU(RecurrentClassifier):
    def forward(self, x):
        keep = (x < 0).unsqueeze(-1)  # meant `x != PAD`: no token is negative, so nothing is kept
        out, _ = self.rnn(self.embed(x) * keep)
        return self.head(out[:, -1])


def build_model():
    return MaskedGRU(nn.GRU)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
