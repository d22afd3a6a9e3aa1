"""LoRA adapters (peft) on the hidden layers of a frozen MLP, the head trained in full
(modules_to_save): a quarter of the parameters train, the rest are frozen on purpose."""
from peft import LoraConfig, get_peft_model
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = []


def build_model():
    return get_peft_model(mlp(), LoraConfig(r=8, target_modules=["0", "2"], modules_to_save=["4"]))


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
