"""A small GAN: a generator and a discriminator, each with its own Adam, trained alternately on a
1-D target distribution N(3, 0.5). Two models, two optimizers (nndoctor must report each)."""
EXPECT_FAIL = []
EXPECT_CAUSE = None

import argparse

import torch
import torch.nn as nn


def in_target(samples):
    """Share of samples within two standard deviations of the target's mean (0.95 for the target itself)."""
    return ((samples - 3.0).abs() < 1.0).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
    discriminator = nn.Sequential(nn.Linear(1, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(args.batch_size, 1), torch.zeros(args.batch_size, 1)
    with torch.no_grad():
        baseline = in_target(generator(torch.randn(4096, 4)))

    for step in range(args.steps):
        real = 3.0 + 0.5 * torch.randn(args.batch_size, 1)
        fake = generator(torch.randn(args.batch_size, 4))
        opt_d.zero_grad()
        loss_d = criterion(discriminator(real), ones) + criterion(discriminator(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = criterion(discriminator(fake), ones)
        loss_g.backward()
        opt_g.step()
        if step % 300 == 0:
            print(f"step {step} loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f}")
    with torch.no_grad():
        score = in_target(generator(torch.randn(4096, 4)))
    print(f"in_target {score:.3f} (untrained-generator baseline {baseline:.3f})")


if __name__ == "__main__":
    main()
