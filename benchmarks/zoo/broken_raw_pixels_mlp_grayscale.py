"""MNIST-like grayscale digits as raw 0..255 values into an MLP without normalization layers."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import image_tensors

EXPECT_FAIL = ["input_normalization"]
EXPECT_CAUSE = "unnormalized_inputs"


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 128), nn.ReLU(), nn.Linear(128, 10))


def build_dataset():
    x, y = image_tensors(channels=1)
    return TensorDataset((x * 255).round(), y)


loss_fn = nn.CrossEntropyLoss()
