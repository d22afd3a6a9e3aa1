"""An LSTM classifier whose forward squashes the logits with torch.tanh before CrossEntropyLoss."""
import torch
from torch import nn

from _zoo_common import RecurrentClassifier, tokens

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "squashed_logits"


class TanhLSTM(RecurrentClassifier):
    def forward(self, x):
        return torch.tanh(super().forward(x))


def build_model():
    return TanhLSTM(nn.LSTM)


def build_dataset():
    return tokens()


loss_fn = nn.CrossEntropyLoss()
