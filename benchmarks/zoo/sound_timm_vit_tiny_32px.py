"""timm's ViT-Tiny (random init) on 32x32 images with 4x4 patches: 12 blocks, 65 tokens, 5.5M parameters.
The issue-14 speed case: a real transformer on small images, 245 s and 3.6 GiB before."""
import timm
import torch

from _zoo_common import images

EXPECT_FAIL = []


def build_model():
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=10)


def build_dataset():
    return images(n=200, size=32)


loss_fn = torch.nn.CrossEntropyLoss()


def build_optimizer(params):
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
