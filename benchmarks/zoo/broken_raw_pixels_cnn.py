"""Images fed as raw 0..255 pixel values, never scaled or mean-centered (seed 002)."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import image_tensors, small_cnn

EXPECT_FAIL = ["input_normalization"]
EXPECT_CAUSE = "unnormalized_inputs"


def build_model():
    return small_cnn()


def build_dataset():
    x, y = image_tensors()
    return TensorDataset((x * 255).round(), y)


loss_fn = nn.CrossEntropyLoss()
