"""torchvision's ResNet-18 (weights=None) for 10 classes on 32x32 images: a real deep residual net."""
import torchvision
from torch import nn

from _zoo_common import images

EXPECT_FAIL = []


def build_model():
    return torchvision.models.resnet18(weights=None, num_classes=10)


def build_dataset():
    return images(n=200, size=32)


loss_fn = nn.CrossEntropyLoss()
