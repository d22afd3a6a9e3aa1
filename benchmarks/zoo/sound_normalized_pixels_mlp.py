"""The raw-pixel case done right: grayscale pixels scaled to [0, 1] and standardized with the
training mean and std, into an MLP with dropout."""
from torch import nn
from torch.utils.data import TensorDataset

from _zoo_common import image_tensors

EXPECT_FAIL = []


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


def build_dataset():
    x, y = image_tensors(channels=1)
    return TensorDataset((x - x.mean()) / x.std(), y)


loss_fn = nn.CrossEntropyLoss()
