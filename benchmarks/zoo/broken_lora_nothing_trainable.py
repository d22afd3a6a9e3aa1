"""LoRA adapters added with peft, then the whole wrapped model frozen again ("freeze the base
model" run after get_peft_model): print_trainable_parameters() says "trainable params: 0"."""
from peft import LoraConfig, get_peft_model
from torch import nn

from _zoo_common import blobs, mlp

EXPECT_FAIL = ["trainable_params"]
EXPECT_CAUSE = "nothing_trains"


def build_model():
    model = get_peft_model(mlp(), LoraConfig(r=8, target_modules=["0", "2"]))
    for p in model.parameters():
        p.requires_grad = False
    return model


def build_dataset():
    return blobs()


loss_fn = nn.CrossEntropyLoss()
