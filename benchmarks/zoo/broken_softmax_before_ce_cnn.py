"""A CNN whose forward ends in F.softmax (functional, not a module) into CrossEntropyLoss."""
import torch.nn.functional as F
from torch import nn

from _zoo_common import images, small_cnn

EXPECT_FAIL = ["output_head"]
EXPECT_CAUSE = "softmax_before_ce"


class SoftmaxCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = small_cnn()

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


def build_model():
    return SoftmaxCNN()


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
