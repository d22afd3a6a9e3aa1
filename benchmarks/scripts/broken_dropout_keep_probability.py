"""Dropout written as a keep probability: nn.Dropout(0.9) after every hidden layer drops 90% of the units."""
# tf.nn.dropout(x, keep_prob) took the probability of keeping a unit; torch.nn.Dropout(p) takes the
# probability of zeroing it, so porting 0.9 drops 90% (issue 12's list; no thread verified offline).
EXPECT_FAIL = ['train_mode']
EXPECT_CAUSE = 'dropout_keep_probability'

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, generator):
    centers = torch.randn(8, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    y = torch.randint(0, 8, (n,), generator=generator)
    x = centers[y] + torch.randn(n, 32, generator=generator)
    return x, y


def evaluate(model, loader):
    was_training = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    model.train(was_training)
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    train_set = TensorDataset(*make_data(2048, g))
    val_x, val_y = make_data(1024, g)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(val_x, val_y), batch_size=256)

    keep_prob = 0.9  # ported from a TensorFlow 1 script, where dropout took the keep probability
    model = nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Dropout(keep_prob),
        nn.Linear(64, 64), nn.ReLU(), nn.Dropout(keep_prob),
        nn.Linear(64, 64), nn.ReLU(), nn.Dropout(keep_prob),
        nn.Linear(64, 8),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.4f} val_acc {evaluate(model, val_loader):.3f}")
    baseline = torch.bincount(val_y).max().item() / len(val_y)
    print(f"val_acc {evaluate(model, val_loader):.3f} (majority baseline {baseline:.3f})")


if __name__ == "__main__":
    main()
