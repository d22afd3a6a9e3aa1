from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nndoctor.checks.easy_data import make_easy_data
from nndoctor.context import Context
from nndoctor.loading import build_subject
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_learn_easy_data(case):
    result = run_case("easy_data", case)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["learned_easy"] is True


class MaskedTokens(Dataset):
    """Dict inputs: padded token ids and their attention mask, as a Hugging Face tokenizer gives."""

    def __init__(self, n: int = 128, length: int = 10, vocab: int = 100):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, vocab, (n, length), generator=g)
        self.lengths = torch.randint(4, length + 1, (n,), generator=g)
        self.labels = torch.arange(n) % 4

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        mask = (torch.arange(self.ids.shape[1]) < self.lengths[i]).long()
        return {"input_ids": self.ids[i] * mask, "attention_mask": mask}, self.labels[i]


class MaskedEncoder(nn.Module):
    def __init__(self, vocab: int = 100, classes: int = 4, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        layer = nn.TransformerEncoderLayer(dim, 4, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        keep = attention_mask.unsqueeze(-1).float()
        return self.head((h * keep).sum(1) / keep.sum(1))


@pytest.mark.parametrize(
    "model, dataset, loss",
    [(MaskedEncoder(), MaskedTokens(), nn.CrossEntropyLoss()), (zoo.Tagger(), zoo.padded_tags(), nn.CrossEntropyLoss())],
    ids=["dict_tokens_with_mask", "tagger_ignore_index"],
)
def test_other_sound_input_and_target_structures_pass(model, dataset, loss):
    result = run_check("easy_data", model, dataset, loss)
    assert result.status is Status.PASS, result.summary


def test_labels_out_of_range_are_left_out_so_the_check_points_at_the_data():
    x, y = zoo.blobs().tensors
    result = run_check("easy_data", zoo.mlp(), TensorDataset(x, y + 1), nn.CrossEntropyLoss())  # label 4 of 4 classes
    assert result.status is Status.PASS, result.summary
    assert result.metrics["prototypes"] == 3
    assert any("look at the data" in line for line in result.evidence)


def _easy(model, dataset, loss, samples=64):
    subject = build_subject(Path("<test>"), model, dataset, loss=loss, device="cpu")
    ctx = Context(subject)
    inputs, targets = ctx.batch(samples)
    return make_easy_data(ctx, inputs, targets, samples), inputs


def test_easy_data_keeps_the_input_structure_and_valid_ids():
    easy, real = _easy(MaskedEncoder(), MaskedTokens(), nn.CrossEntropyLoss())
    assert set(easy.inputs) == {"input_ids", "attention_mask"}
    ids, mask = easy.inputs["input_ids"], easy.inputs["attention_mask"]
    assert ids.shape == (64, 10) and ids.dtype == real["input_ids"].dtype
    assert int(ids.max()) <= int(real["input_ids"].max())
    # the mask is structure: real rows, never a class code (an all-padding row would make NaN)
    assert bool((mask.sum(1) > 0).all()) and set(mask.unique().tolist()) <= {0, 1}
    # "aaa", "bbb", ...: each class's first token is the same across its samples and differs between classes
    first_token = {int(c): set(ids[easy.targets == c, 0].tolist()) for c in easy.targets.unique()}
    assert all(len(tokens) == 1 for tokens in first_token.values())
    assert len({next(iter(t)) for t in first_token.values()}) == easy.groups == 4


def test_a_vocabulary_smaller_than_the_classes_still_tells_them_apart():
    tokens = torch.randint(0, 4, (128, 30), generator=torch.Generator().manual_seed(0))  # DNA letters
    easy, _ = _easy(zoo.GRUClassifier(vocab=4, classes=8), TensorDataset(tokens, torch.arange(128) % 8), nn.CrossEntropyLoss())
    sequences = {tuple(easy.inputs[easy.targets == c][0].tolist()) for c in range(8)}
    assert len(sequences) == easy.groups == 8
    assert int(easy.inputs.min()) >= 0 and int(easy.inputs.max()) <= 3


def test_easy_images_differ_per_channel_for_pooling_models():
    easy, real = _easy(zoo.SmallCNN(), zoo.images(), nn.CrossEntropyLoss())
    x = easy.inputs
    assert x.shape == real.shape and x.dtype == real.dtype
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1
    channel_means = torch.stack([x[easy.targets == c].mean(dim=(0, 2, 3)) for c in range(easy.groups)])
    assert float(torch.cdist(channel_means, channel_means).add(torch.eye(easy.groups) * 9).min()) > 0.1


def test_regression_targets_keep_the_real_range():
    easy, _ = _easy(zoo.mlp(8, 1), zoo.regression(), nn.MSELoss())
    real_y = zoo.regression().tensors[1]
    assert easy.targets.shape == (64, 1)
    assert float(easy.targets.min()) >= float(real_y.min()) and float(easy.targets.max()) <= float(real_y.max())


class SoftmaxOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = zoo.mlp()

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def test_softmax_into_cross_entropy_cannot_reach_a_low_loss():
    """The loss of softmax outputs read as logits cannot fall below ln(1 + 3/e) = 0.74 for 4
    classes: every easy sample ends up right, but the loss stays far above the goal."""
    result = run_check("easy_data", SoftmaxOutput(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["learned_easy"] is False
    assert result.metrics["final_loss"] > 0.7
    assert "not the data" in result.summary
    assert "logits" in result.fix


def test_softmax_into_cross_entropy_with_small_sgd_steps_does_not_pass():
    result = run_check("easy_data", SoftmaxOutput(), zoo.blobs(), nn.CrossEntropyLoss(), lambda p: torch.optim.SGD(p, lr=0.01))
    assert result.status in (Status.FAIL, Status.WARN), result.summary
    assert result.metrics["learned_easy"] is False


def test_final_layer_frozen_at_zero_fails():
    model = zoo.mlp()
    nn.init.zeros_(model[-1].weight)
    nn.init.zeros_(model[-1].bias)
    model[-1].requires_grad_(False)
    result = run_check("easy_data", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["pattern"] == "plateau"


def test_zero_initialized_mlp_fails():
    model = zoo.mlp()
    for p in model.parameters():
        nn.init.zeros_(p)
    result = run_check("easy_data", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL, result.summary


def test_gru_with_embedding_frozen_at_zero_fails():
    model = zoo.GRUClassifier()
    nn.init.zeros_(model.embed.weight)
    model.embed.weight.requires_grad_(False)
    # every input looks the same to the GRU, whatever the budget: a short one shows it
    result = run_check("easy_data", model, zoo.tokens(), nn.CrossEntropyLoss(), thresholds={"max_steps": 100})
    assert result.status is Status.FAIL, result.summary


def test_optimizer_that_maximizes_fails():
    result = run_check("easy_data", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), lambda p: torch.optim.SGD(p, lr=0.05, maximize=True))
    assert result.status is Status.FAIL, result.summary


def test_regression_head_clipped_by_relu_fails():
    """Targets in (-2, 2) and a ReLU on the output: the negative half can never be fitted."""
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1), nn.ReLU())
    result = run_check("easy_data", model, zoo.regression(), nn.MSELoss())
    assert result.status is Status.FAIL, result.summary
