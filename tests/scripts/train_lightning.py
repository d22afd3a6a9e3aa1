"""A tiny Lightning training script (Trainer.fit, CPU, synthetic blobs)."""

import lightning as L
import torch
from torch import nn


class Classifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4))
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


if __name__ == "__main__":
    torch.manual_seed(0)
    centers = torch.randn(4, 16) * 3
    labels = torch.randint(0, 4, (256,))
    data = torch.utils.data.TensorDataset(centers[labels] + torch.randn(256, 16), labels)
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    trainer = L.Trainer(max_epochs=5, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Classifier(), loader)
