"""A CNN with functional torch.relu in forward and conv biases at -8: dead feature maps."""
import torch
from torch import nn

from _zoo_common import images

EXPECT_FAIL = ["dead_relu"]
EXPECT_CAUSE = "dead_relus"


class DeadCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)
        with torch.no_grad():
            self.conv1.bias.fill_(-8.0)
            self.conv2.bias.fill_(-8.0)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return self.head(h.mean(dim=(2, 3)))


def build_model():
    return DeadCNN()


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
