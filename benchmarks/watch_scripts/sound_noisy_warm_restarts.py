"""A long, noisy but sound run: 5% wrong labels, small batches, SGD with CosineAnnealingWarmRestarts
(the loss jumps up at every restart) and weight decay. Nothing fails mid-training: a watcher must not
raise an alarm at the restarts. ONSET_STEP is None (measured: the loss stays finite and the accuracy
ends high)."""
ONSET_STEP = None
EXPECT_CAUSE = None

import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(4, 16, generator=g)
    y = torch.randint(0, 4, (4096,), generator=g)
    x = centers[y] + torch.randn(4096, 16, generator=g)
    noisy = torch.rand(4096, generator=g) < 0.05
    y[noisy] = torch.randint(0, 4, (int(noisy.sum()),), generator=g)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=250)
    criterion = nn.CrossEntropyLoss()
    for step in range(1500):
        idx = torch.randint(0, 4096, (16,), generator=g)
        loss = criterion(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if not torch.isfinite(loss):
            print(f"non-finite loss at step {step}")
            break
        if step % 250 == 0 or step == 1499:
            with torch.no_grad():
                accuracy = (model(x).argmax(1) == y).float().mean().item()
            print(f"step {step} loss {loss.item():.4f} train_acc {accuracy:.3f}")


if __name__ == "__main__":
    main()
