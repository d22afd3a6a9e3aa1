"""A Lightning script: a LightningModule with training/validation steps and Trainer.fit on CPU."""
EXPECT_FAIL = []
EXPECT_CAUSE = None

import argparse

import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, generator):
    centers = torch.randn(8, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    y = torch.randint(0, 8, (n,), generator=generator)
    x = centers[y] + torch.randn(n, 32, generator=generator)
    return x, y


class LitClassifier(L.LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.max_epochs)
        return [optimizer], [scheduler]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(1)
    train_loader = DataLoader(TensorDataset(*make_data(2048, g)), batch_size=64, shuffle=True)
    val_x, val_y = make_data(1024, g)
    model = LitClassifier(args.lr)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, train_loader)
    model.eval()
    with torch.no_grad():
        accuracy = (model(val_x).argmax(1) == val_y).float().mean().item()
    baseline = torch.bincount(val_y).max().item() / len(val_y)
    print(f"val_acc {accuracy:.3f} (majority baseline {baseline:.3f})")


if __name__ == "__main__":
    main()
