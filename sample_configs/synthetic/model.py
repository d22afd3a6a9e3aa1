"""An MLP for nndoctor's synthetic data: 3x16x16 standardized inputs, 5 classes that are a fixed
(random, linear) function of the inputs. Useful to try an architecture before real data exists."""

from torch import nn


def build_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 5))


loss_fn = nn.CrossEntropyLoss()
