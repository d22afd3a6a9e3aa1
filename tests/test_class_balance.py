from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass_or_skip(case):
    result = run_case("class_balance", case)
    assert result.status in (Status.PASS, Status.SKIP), result.summary


def _classes(*counts: int) -> TensorDataset:
    """Separable Gaussian classes with exactly the given counts."""
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    x = torch.randn(len(y), 20, generator=torch.Generator().manual_seed(0)) + y[:, None].float()
    return TensorDataset(x, y)


def test_95_5_fails():
    result = run_check("class_balance", zoo.mlp(classes=2), _classes(950, 50), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "95%" in result.summary and "ratio 19.0" in result.summary
    assert result.tables[0].rows[0][:2] == ("0", 950)


def test_95_5_with_inverse_frequency_weights_is_mitigated():
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 19.0]))
    result = run_check("class_balance", zoo.mlp(classes=2), _classes(950, 50), loss)
    assert result.status is Status.PASS
    assert "mitigated" in result.summary and result.metrics["mitigated_by_loss_weights"]


def test_95_5_with_partial_weights_warns_not_fails():
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 4.0]))
    result = run_check("class_balance", zoo.mlp(classes=2), _classes(950, 50), loss)
    assert result.status is Status.WARN
    assert "weighted ratio 4.8" in result.summary


def test_weights_favouring_the_majority_are_no_mitigation():
    loss = nn.CrossEntropyLoss(weight=torch.tensor([19.0, 1.0]))
    result = run_check("class_balance", zoo.mlp(classes=2), _classes(950, 50), loss)
    assert result.status is Status.FAIL
    assert "do not lower it" in result.summary


def test_4_to_1_warns():
    result = run_check("class_balance", zoo.mlp(classes=2), _classes(800, 200), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "ratio 4.0" in result.summary


def test_a_class_without_samples_warns():
    result = run_check("class_balance", zoo.mlp(classes=3), _classes(300, 300), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "never occur: 2" in result.summary


def _binary(positives: int, n: int = 1000) -> TensorDataset:
    y = torch.zeros(n, 1)
    y[:positives] = 1
    return TensorDataset(torch.randn(n, 10, generator=torch.Generator().manual_seed(0)) + y, y)


def test_binary_97_3_fails():
    result = run_check("class_balance", nn.Linear(10, 1), _binary(30), nn.BCEWithLogitsLoss())
    assert result.status is Status.FAIL
    assert "positives are 3%" in result.summary
    assert "pos_weight" in result.fix


def test_binary_97_3_with_pos_weight_is_mitigated():
    result = run_check("class_balance", nn.Linear(10, 1), _binary(30), nn.BCEWithLogitsLoss(pos_weight=torch.tensor([32.0])))
    assert result.status is Status.PASS
    assert "mitigated" in result.summary


def test_multilabel_rare_label_fails_naming_the_output():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(1000, 4, generator=g) < torch.tensor([0.5, 0.4, 0.02, 0.45])).float()
    result = run_check("class_balance", nn.Linear(10, 4), TensorDataset(torch.randn(1000, 10, generator=g), y), nn.BCEWithLogitsLoss())
    assert result.status is Status.FAIL
    assert result.summary.startswith("output 2:")
    assert "worst of 4 outputs" in result.summary


def test_regression_skips():
    result = run_check("class_balance", nn.Linear(8, 1), zoo.regression(), nn.MSELoss())
    assert result.status is Status.SKIP


class RoundRobin(Dataset):
    """Balanced labels behind __getitem__ only, so the check reads a 2048-sample scan of them."""

    def __init__(self, n: int, classes: int):
        self.inputs = torch.randn(n, 20, generator=torch.Generator().manual_seed(0))
        self.labels = torch.arange(n) % classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.inputs[i], int(self.labels[i])


def test_many_balanced_classes_in_a_scan_are_not_called_imbalanced():
    # ~2 scanned samples per class: the raw max/min count is large by chance alone.
    result = run_check("class_balance", zoo.mlp(classes=1000), RoundRobin(20_000, 1000), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert not result.metrics["complete"]


def test_imbalance_in_a_scan_fails():
    dataset = RoundRobin(20_000, 2)
    dataset.labels = (torch.arange(20_000) % 20 == 0).long()  # 5% positives
    result = run_check("class_balance", zoo.mlp(classes=2), dataset, nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "a scan of 2048 of 20000 samples" in result.summary


def test_a_single_class_fails():
    result = run_check("class_balance", nn.Linear(10, 1), _binary(0), nn.BCEWithLogitsLoss())
    assert result.status is Status.FAIL
    assert "no other class occurs" in result.summary


# --- token labels: a language, not a classification prior ------------------------------------

ZOO = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"


def test_zipf_token_labels_of_a_language_model_pass():
    from nndoctor.engine import run_path
    from nndoctor.options import RunOptions

    result = run_path(ZOO / "sound_causal_lm_zipf.py", options=RunOptions(only=("class_balance",), seed=0, device="cpu")).result("class_balance")
    assert result.status is Status.PASS, result.summary
    assert "next-token prediction" in result.summary and "entropy" in result.summary
    # The same counts judged as classes would fail: the commonest token is far above the rarest.
    assert result.metrics["distinct"] > 50 and result.metrics["ignored_share"] == 0.0


class _TokenItems(Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": (self.labels[i] != -100).long(), "labels": self.labels[i]}


def _gpt2(eos: int):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=40, n_positions=12,
                                     eos_token_id=eos, bos_token_id=eos, pad_token_id=eos)
    return transformers.GPT2LMHeadModel(config)


def _padded_sequences(eos: int = 39):
    """Sequences of 5-9 tokens, each ended by EOS and padded with EOS (pad = eos)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.full((48, 12), eos)
    for row in range(48):
        length = int(torch.randint(5, 10, (1,), generator=g))
        ids[row, :length] = torch.randint(0, eos, (length,), generator=g)
    return ids


def test_eos_masked_with_the_padding_warns():
    ids = _padded_sequences()
    labels = ids.masked_fill(ids == 39, -100)  # the collator's labels[input_ids == pad_token_id] = -100
    result = run_check("class_balance", _gpt2(39), _TokenItems(ids, labels))
    assert result.status is Status.WARN, result.summary
    assert result.codes == ("class_balance.eos_label_ignored",)
    assert "pad_token_id is eos_token_id" in result.summary


def test_padding_masked_by_attention_keeps_eos_a_target():
    ids = _padded_sequences()
    first_eos = (ids == 39).int().argmax(dim=1)
    labels = ids.clone()
    for row, end in enumerate(first_eos.tolist()):
        labels[row, end + 1:] = -100  # padding after the first EOS; the EOS itself stays a target
    result = run_check("class_balance", _gpt2(39), _TokenItems(ids, labels))
    assert result.status is Status.PASS, result.summary
    assert 0.2 < result.metrics["ignored_share"] < 0.6


def test_every_label_ignored_fails():
    ids = _padded_sequences()
    labels = torch.full_like(ids, -100)  # a prompt mask that covers every answer
    result = run_check("class_balance", _gpt2(39), _TokenItems(ids, labels))
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("class_balance.all_labels_ignored",)
