"""A Lightning-style autoencoder (training_step: F.mse_loss of the reconstruction against the
flattened input; the labels are ignored), given without loss_fn: checked as a reconstruction."""
import torch
import torch.nn.functional as F
from torch import nn

from _zoo_common import images

EXPECT_FAIL = []


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 32))
        self.decoder = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 3 * 16 * 16))

    def forward(self, x):
        return self.decoder(self.encoder(x.view(x.size(0), -1)))

    def training_step(self, batch, batch_idx):
        x, _ = batch
        x = x.view(x.size(0), -1)
        return F.mse_loss(self.decoder(self.encoder(x)), x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def build_model():
    return AutoEncoder()


def build_dataset():
    return images()
