"""The training features are shuffled in place to 'randomize the order', without their labels:
the labels no longer belong to their inputs."""
# np.random.shuffle(X) without the same permutation of y destroys the input-label pairing; the model
# can only memorize (issue 12's list of faults from public reports; no thread verified offline).
EXPECT_FAIL = ['label_signal']
EXPECT_CAUSE = 'labels_detached_from_inputs'

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
    train_x, train_y = train_set.tensors
    train_x = train_x[torch.randperm(len(train_x))]  # bug: labels are not permuted with them
    train_set = TensorDataset(train_x, train_y)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(val_x, val_y), batch_size=256)

    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
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
