"""A small CNN for MNIST-format 1x28x28 digits (data/MNIST/raw, written by ../make_data.py)."""

from torch import nn


class DigitCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 7 * 7, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build_model() -> nn.Module:
    return DigitCNN()


loss_fn = nn.CrossEntropyLoss()
