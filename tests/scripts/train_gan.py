"""A tiny GAN: two models, two optimizers, each stepped on its own loss."""

import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--d-lr", type=float, default=1e-2)
args = parser.parse_args()

torch.manual_seed(0)
generator = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
discriminator = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
g_opt = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
d_opt = torch.optim.SGD(discriminator.parameters(), lr=args.d_lr)
bce = nn.BCEWithLogitsLoss()
for step in range(1000):
    real = torch.randn(64, 2) * 0.5 + 2.0
    fake = generator(torch.randn(64, 8))
    d_opt.zero_grad()
    d_loss = bce(discriminator(real), torch.ones(64, 1)) + bce(discriminator(fake.detach()), torch.zeros(64, 1))
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad()
    g_loss = bce(discriminator(fake), torch.ones(64, 1))
    g_loss.backward()
    g_opt.step()
