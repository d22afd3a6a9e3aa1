"""Hugging Face BertForSequenceClassification (tiny random-init config) given labels: its own
cross-entropy loss is used, verified against CrossEntropyLoss on the logits."""
import torch
from torch.utils.data import Dataset

from _zoo_common import tokens

EXPECT_FAIL = []


def build_model():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3)
    return BertForSequenceClassification(config)


class Items(Dataset):
    def __init__(self):
        self.data = tokens()

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        ids, label = self.data[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": label}


def build_dataset():
    return Items()
