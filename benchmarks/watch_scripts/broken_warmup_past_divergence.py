"""Linear warm-up to a peak learning rate that is past the divergence point: the model learns while the
LR is small, then the loss blows up once the LR crosses what this model tolerates (SGD, lr 0 -> 3
over 400 steps). ONSET_STEP is the first step whose batch loss exceeds three times the loss of a
uniform prediction (ln 4) after the model had learned, measured by running this script."""
ONSET_STEP = 169
EXPECT_CAUSE = None

import math

import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(4, 16, generator=g)
    y = torch.randint(0, 4, (4096,), generator=g)
    x = centers[y] + torch.randn(4096, 16, generator=g)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=3.0, momentum=0.9)
    warmup = 400
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    criterion = nn.CrossEntropyLoss()
    learned = False
    for step in range(600):
        idx = torch.randint(0, 4096, (64,), generator=g)
        loss = criterion(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        learned = learned or loss.item() < 0.5 * math.log(4)
        if learned and not loss.item() < 3 * math.log(4):
            print(f"loss {loss.item():.3g} past 3 x ln(4) at step {step} (lr {optimizer.param_groups[0]['lr']:.3g})")
            break
        if step % 50 == 0:
            with torch.no_grad():
                accuracy = (model(x).argmax(1) == y).float().mean().item()
            print(f"step {step} lr {optimizer.param_groups[0]['lr']:.3g} loss {loss.item():.4f} train_acc {accuracy:.3f}")


if __name__ == "__main__":
    main()
