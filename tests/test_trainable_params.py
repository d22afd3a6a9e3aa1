import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import Dataset, TensorDataset

from nndoctor import api
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def blobs(n: int = 256) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 20, generator=g)
    return TensorDataset(x, (x @ torch.randn(20, 4, generator=g)).argmax(1))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class CheckpointedBlock(nn.Module):
    """A frozen stem, then a block run under torch.utils.checkpoint, then the head."""

    def __init__(self, reentrant: bool):
        super().__init__()
        self.stem = nn.Linear(20, 64)
        self.block = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
        self.head = nn.Linear(64, 4)
        self.reentrant = reentrant

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = checkpoint(self.block, h, use_reentrant=self.reentrant)
        return self.head(torch.relu(h))


def lora(model: nn.Module, targets: list[str], head: str | None = None) -> nn.Module:
    config = peft.LoraConfig(r=8, target_modules=targets, modules_to_save=[head] if head else None)
    return peft.get_peft_model(model, config)


def check(model, dataset=None, **kwargs):
    return run_check("trainable_params", model, dataset or blobs(), nn.CrossEntropyLoss(), **kwargs)


def test_lora_adapters_pass_and_are_counted():
    torch.manual_seed(0)
    model = lora(Mlp(), ["fc1", "fc2"], head="head")
    result = check(model)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["adapter_tensors"] == 4
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert result.metrics["trainable_parameters"] == trainable
    assert 0 < result.metrics["trainable_share"] < 0.5
    assert "from step 2 on" in result.summary  # LoRA's B starts at zero: A gets its gradient a step later


def test_frozen_backbone_with_trainable_head_passes():
    torch.manual_seed(0)
    model = Mlp()
    model.fc1.requires_grad_(False)
    model.fc2.requires_grad_(False)
    result = check(model)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["frozen_tensors"] == 4 and result.metrics["trainable_tensors"] == 2


def test_lora_with_nothing_trainable_fails_and_is_the_first_cause():
    torch.manual_seed(0)
    model = lora(Mlp(), ["fc1", "fc2"])
    model.requires_grad_(False)  # "trainable params: 0"
    report = api.check(model, blobs(), loss_fn=nn.CrossEntropyLoss(), device="cpu")
    result = report.result("trainable_params")
    assert result.status is Status.FAIL and result.codes == ("trainable_params.nothing_trainable",)
    # the training checks cannot run: they say why instead of crashing
    assert not [r.id for r in report.results if r.status is Status.ERROR]
    assert report.result("overfit_small_batch").status is Status.SKIP
    assert report.causes[0].key == "nothing_trains"


def test_reentrant_checkpoint_cutting_off_everything_trainable_fails():
    torch.manual_seed(0)
    model = CheckpointedBlock(reentrant=True)
    model.stem.requires_grad_(False)
    model.head.requires_grad_(False)
    result = check(model)
    assert result.status is Status.FAIL and result.codes == ("trainable_params.loss_not_connected",)
    assert any("requires_grad" in line for line in result.evidence), result.evidence


def test_adapters_inside_a_reentrant_checkpoint_never_move():
    torch.manual_seed(0)
    model = lora(CheckpointedBlock(reentrant=True), ["block.0", "block.2"], head="head")
    result = check(model)
    assert result.status is Status.FAIL and result.codes == ("trainable_params.adapters_static",)
    assert "no gradient" in result.summary


def test_adapters_inside_a_non_reentrant_checkpoint_pass():
    torch.manual_seed(0)
    model = lora(CheckpointedBlock(reentrant=False), ["block.0", "block.2"], head="head")
    assert check(model).status is Status.PASS


def test_optimizer_built_before_wrapping_leaves_the_adapters_static():
    torch.manual_seed(0)
    base = Mlp()
    optimizer = torch.optim.AdamW(base.parameters(), lr=1e-3)  # holds the base weights only
    model = lora(base, ["fc1", "fc2"], head="head")
    result = check(model, optimizer=optimizer)
    assert result.status is Status.FAIL and result.codes == ("trainable_params.adapters_static",)
    assert "not held by the optimizer" in result.summary


def test_adapters_in_a_group_with_learning_rate_zero_do_not_move():
    torch.manual_seed(0)
    model = lora(Mlp(), ["fc1", "fc2"], head="head")
    adapters = [p for name, p in model.named_parameters() if "lora_" in name]
    others = [p for name, p in model.named_parameters() if "lora_" not in name and p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": others}, {"params": adapters, "lr": 0.0}], lr=1e-3)
    result = check(model, optimizer=optimizer)
    assert result.status is Status.FAIL and result.codes == ("trainable_params.adapters_static",)
    assert "learning rate of 0" in result.summary


def test_frozen_adapters_beside_a_trainable_head_fail():
    torch.manual_seed(0)
    model = lora(Mlp(), ["fc1", "fc2"], head="head")
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.requires_grad_(False)
    result = check(model)
    assert result.status is Status.FAIL and result.codes == ("trainable_params.adapters_frozen",)


class Tokens(Dataset):
    def __init__(self, n: int = 64, length: int = 16, vocab: int = 100):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, vocab, (n, length), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids[0] % 2}


def test_hugging_face_bert_with_lora_passes():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32, num_labels=2,
    )
    model = peft.get_peft_model(
        transformers.BertForSequenceClassification(config),
        peft.LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS"),
    )
    result = run_check("trainable_params", model, Tokens())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["adapter_tensors"] == 8


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("trainable_params", case)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["frozen_tensors"] == 0 and result.metrics["trainable_share"] == 1.0
