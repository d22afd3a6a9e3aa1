"""A Hugging Face Trainer script: a tiny random-init BERT sequence classifier (no download) on a
synthetic token task (the label is which of four marker tokens the sequence contains), Trainer.train."""
EXPECT_FAIL = []
EXPECT_CAUSE = None

import argparse
import tempfile

import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

VOCAB, LENGTH, CLASSES = 64, 16, 4


class MarkerDataset(Dataset):
    """Random tokens 8..63 with one marker token (1..4) at a random position; the label is the marker."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(8, VOCAB, (n, LENGTH), generator=g)
        self.labels = torch.randint(0, CLASSES, (n,), generator=g)
        where = torch.randint(0, LENGTH, (n,), generator=g)
        self.ids[torch.arange(n), where] = self.labels + 1

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(LENGTH, dtype=torch.long), "labels": self.labels[i]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=LENGTH, num_labels=CLASSES)
    model = BertForSequenceClassification(config)
    train_set, val_set = MarkerDataset(2048, 1), MarkerDataset(512, 2)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(output_dir=out, num_train_epochs=args.epochs, learning_rate=args.lr,
                                          per_device_train_batch_size=32, warmup_steps=20, lr_scheduler_type="linear",
                                          logging_steps=50, save_strategy="no", report_to=[], use_cpu=True, seed=0)
        Trainer(model=model, args=training_args, train_dataset=train_set).train()
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=val_set.ids, attention_mask=torch.ones_like(val_set.ids)).logits
    accuracy = (logits.argmax(1) == val_set.labels).float().mean().item()
    baseline = torch.bincount(val_set.labels).max().item() / len(val_set.labels)
    print(f"val_acc {accuracy:.3f} (majority baseline {baseline:.3f})")


if __name__ == "__main__":
    main()
