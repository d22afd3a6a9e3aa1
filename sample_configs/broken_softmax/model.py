"""DELIBERATELY BROKEN, to show a failing report. Two classic bugs:

1. the model ends in Softmax, but CrossEntropyLoss applies log-softmax itself, so it gets
   probabilities instead of logits (gradients shrink, the loss barely moves);
2. the digits are fed as raw 0..255 pixels, never scaled or normalized.
"""

from pathlib import Path

import torchvision
from torch import nn
from torch.utils.data import TensorDataset

MNIST_ROOT = Path(__file__).resolve().parent.parent / "torchvision_mnist" / "data"


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10),
        nn.Softmax(dim=1),  # BUG 1: CrossEntropyLoss wants logits
    )


def build_dataset() -> TensorDataset:
    digits = torchvision.datasets.MNIST(MNIST_ROOT, train=True, download=False)
    return TensorDataset(digits.data.unsqueeze(1).float(), digits.targets)  # BUG 2: raw 0..255 pixels


loss_fn = nn.CrossEntropyLoss()
