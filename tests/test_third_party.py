"""Whole reports on third-party models built from tiny random-init configs (nothing downloaded):
the fine-tuning and vision setups of issue 14 pass, the broken ones fail on the right check."""
import pytest
import torch
from torch import nn

from nndoctor import api
from nndoctor.result import Status
from tests import zoo

peft = pytest.importorskip("peft")
timm = pytest.importorskip("timm")


def failures(report) -> dict[str, str]:
    return {r.id: r.summary for r in report.results if r.status in (Status.FAIL, Status.ERROR)}


def test_timm_vit_tiny_config_passes():
    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, num_classes=10,
    )
    report = api.check(model, zoo.images(n=256), loss_fn=nn.CrossEntropyLoss(), device="cpu")
    assert not failures(report), failures(report)


def test_lora_wrapped_model_passes_every_check():
    torch.manual_seed(0)
    model = peft.get_peft_model(zoo.mlp(), peft.LoraConfig(r=8, target_modules=["0", "2"], modules_to_save=["4"]))
    report = api.check(model, zoo.blobs(), loss_fn=nn.CrossEntropyLoss(), device="cpu")
    assert not failures(report), failures(report)
    assert report.result("trainable_params").metrics["adapter_tensors"] == 4


def test_lora_model_with_no_trainable_adapter_fails_on_trainable_params_only():
    torch.manual_seed(0)
    model = peft.get_peft_model(zoo.mlp(), peft.LoraConfig(r=8, target_modules=["0", "2"]))
    model.requires_grad_(False)
    report = api.check(model, zoo.blobs(), loss_fn=nn.CrossEntropyLoss(), device="cpu")
    assert set(failures(report)) == {"trainable_params"}, failures(report)
    assert report.causes[0].key == "nothing_trains"
