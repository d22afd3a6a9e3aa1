"""A hand-written cross-entropy, -log(softmax(logits)[label]), on data with a few mislabelled samples
and a high learning rate: the model learns, its logits keep growing, and once a mislabelled sample's
probability underflows to exactly 0 in float32 the loss becomes inf and the weights NaN.
ONSET_STEP is the first optimizer step whose loss is not finite, measured by running this script."""
ONSET_STEP = 64
EXPECT_CAUSE = None

import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(4, 16, generator=g) * 3
    y = torch.randint(0, 4, (4096,), generator=g)
    x = centers[y] + torch.randn(4096, 16, generator=g)
    y[:20] = (y[:20] + 1) % 4  # a few wrong labels, as in any real data set
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for step in range(2000):
        idx = torch.randint(0, 4096, (128,), generator=g)
        probs = torch.softmax(model(x[idx]), dim=1)
        loss = -torch.log(probs[torch.arange(128), y[idx]]).mean()  # bug: log of a probability that can reach 0
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not torch.isfinite(loss):
            print(f"non-finite loss at step {step}")
            break
        if step % 50 == 0:
            accuracy = (model(x).argmax(1) == y).float().mean().item()
            print(f"step {step} loss {loss.item():.4f} train_acc {accuracy:.3f}")


if __name__ == "__main__":
    main()
