"""model.eval() is called once before training (to print a sanity-check accuracy) and never undone:
the input BatchNorm that should standardize the raw, badly scaled features keeps its initial statistics."""
# Training in eval mode: BatchNorm uses its running statistics and never updates them, dropout is off
# (issue 12's list of faults from public reports; no thread verified offline). Here the input BatchNorm is the only thing scaling the
# raw features, so in eval mode the network sees values around 300.
EXPECT_FAIL = ['train_mode']
EXPECT_CAUSE = 'eval_mode_training'

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
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    train_set = TensorDataset(*make_data(2048, g))
    val_x, val_y = make_data(1024, g)
    train_x, train_y = train_set.tensors
    train_set = TensorDataset(train_x * 40 + 300, train_y)
    val_x = val_x * 40 + 300
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(val_x, val_y), batch_size=256)

    # raw sensor features: offset and scale far from 0/1; the first BatchNorm is meant to standardize them
    model = nn.Sequential(nn.BatchNorm1d(32), nn.Linear(32, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    model.eval()
    print(f"accuracy before training {evaluate(model, val_loader):.3f}")
    criterion = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        for x, y in train_loader:  # bug: no model.train() anywhere; BatchNorm keeps its init statistics
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.4f} val_acc {evaluate(model, val_loader):.3f}")
    baseline = torch.bincount(val_y).max().item() / len(val_y)
    print(f"val_acc {evaluate(model, val_loader):.3f} (majority baseline {baseline:.3f})")


if __name__ == "__main__":
    main()
