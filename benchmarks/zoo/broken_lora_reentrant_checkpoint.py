"""LoRA adapters inside a block run under reentrant gradient checkpointing, on a frozen stem: the
block's input does not require grad, so its output carries no grad_fn ("None of the inputs have
requires_grad=True") and the adapters never get a gradient; only the head learns."""
from peft import LoraConfig, get_peft_model
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from _zoo_common import blobs

EXPECT_FAIL = ["trainable_params"]
EXPECT_CAUSE = "nothing_trains"


class CheckpointedMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(20, 64)
        self.block = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        return self.head(torch.relu(checkpoint(self.block, h, use_reentrant=True)))


def build_model():
    return get_peft_model(CheckpointedMlp(), LoraConfig(r=8, target_modules=["block.0", "block.2"], modules_to_save=["head"]))


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
