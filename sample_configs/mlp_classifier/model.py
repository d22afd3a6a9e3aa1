"""A sound MLP classifier on synthetic, standardized data: nndoctor should pass it.

Run:  nndoctor check sample_configs/mlp_classifier/model.py
"""

import torch
from torch import nn
from torch.utils.data import TensorDataset

NUM_CLASSES = 4


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))


def build_dataset():
    # Balanced classes, each a random center plus noise; inputs standardized as training data should be.
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(1000) % NUM_CLASSES
    centers = torch.randn(NUM_CLASSES, 20, generator=generator) * 0.6
    x = centers[y] + torch.randn(1000, 20, generator=generator)
    x = (x - x.mean(0)) / x.std(0)
    return TensorDataset(x, y)


loss_fn = nn.CrossEntropyLoss()


def build_optimizer(params):
    return torch.optim.Adam(params, lr=1e-3)
