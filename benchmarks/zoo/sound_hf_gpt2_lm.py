"""Hugging Face GPT2LMHeadModel (tiny random-init config, nothing downloaded) given dict items
with labels = input_ids: the model shifts the labels inside and computes its own loss."""
import torch
from torch.utils.data import Dataset

from _zoo_common import zipf_token_sequences

EXPECT_FAIL = []
VOCAB, LENGTH = 100, 16


def build_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=LENGTH,
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    return GPT2LMHeadModel(config)


class TokenItems(Dataset):
    def __init__(self):
        self.ids = zipf_token_sequences(length=LENGTH, vocab=VOCAB)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def build_dataset():
    return TokenItems()
