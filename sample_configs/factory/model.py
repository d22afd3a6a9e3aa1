"""A small MLP for the two-moons data that data.py:two_moons makes (see nndoctor.yaml)."""

from torch import nn


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


loss_fn = nn.CrossEntropyLoss()
