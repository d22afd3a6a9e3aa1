"""Token-level objectives: which loss a language model computes, the references its overfit
goal rests on, and a Hugging Face model's own loss taken as the loss."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from nndoctor import api, tokens
from nndoctor.tokens import TokenCrossEntropy, TokenObjective

V = 7


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 6, V, generator=g), torch.randint(0, V, (4, 6), generator=g)


def _shifted(out, y):
    return F.cross_entropy(out[:, :-1].reshape(-1, V), y[:, 1:].reshape(-1))


class _FlatCrossEntropy(nn.CrossEntropyLoss):
    def forward(self, output, target):
        return super().forward(output.reshape(-1, output.shape[-1]), target.reshape(-1))


def test_recognises_shift_and_ignore_index():
    out, y = _batch()
    assert tokens.recognise(_shifted, out, y) == TokenObjective(1, -100, V)
    flat = lambda o, t: F.cross_entropy(o.reshape(-1, V), t.reshape(-1))  # noqa: E731
    assert tokens.recognise(flat, out, y) == TokenObjective(0, -100, V)
    y[:, :2] = -100  # a prompt masked out of the loss
    assert tokens.recognise(flat, out, y).ignore_index == -100
    out, y = _batch()
    assert tokens.recognise(_FlatCrossEntropy(ignore_index=3), out, y).ignore_index == 3  # padding id 3
    assert tokens.recognise(lambda o, t: (o.mean() - t.float().mean()) ** 2, out, y) is None  # not a token CE


def test_prefix_floor_and_unigram_baseline_are_exact():
    ids = torch.tensor([[0, 1, 2], [0, 3, 2], [1, 1, 1]])
    found = tokens.references(TokenObjective(1, -100, 5), ids, ids.clone())
    # After the shared prefix "0" the next token is 1 or 3: ln 2 on 2 of the 6 scored positions.
    assert found.floor == pytest.approx(2 * math.log(2) / 6)
    assert found.best_accuracy == pytest.approx(5 / 6)
    counts = [3, 1, 2]  # labels 1, 3, 2 over the scored positions
    assert found.baseline == pytest.approx(-sum(c / 6 * math.log(c / 6) for c in counts))
    # A model seeing the whole sequence (masked LM, tagging) can memorize every position.
    assert tokens.references(TokenObjective(0, -100, 5), ids, ids.clone()).floor == pytest.approx(0.0)


def test_labels_equal_to_next_inputs_mark_a_next_token_objective():
    ids = torch.randint(0, V, (4, 9), generator=torch.Generator().manual_seed(1))
    x, y = ids[:, :-1], ids[:, 1:]
    assert tokens.with_data(TokenObjective(0, -100, V), x, y).causal
    assert not tokens.with_data(TokenObjective(0, -100, V), x, x % 2).causal


class _Items(Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def test_hf_causal_lm_uses_its_own_shifted_loss():
    transformers = pytest.importorskip("transformers")
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8))
    ids = torch.randint(0, 50, (16, 8), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :3] = -100
    report = api.check(model, _Items(ids, labels), only=["initial_loss"], device="cpu")
    subject_loss = report.notes
    assert any("GPT2LMHeadModel's own loss" in note and "shifted" in note for note in subject_loss), subject_loss
    with torch.no_grad():
        own = model(input_ids=ids[:4], labels=labels[:4])
    objective = TokenObjective(1, -100, 50)
    assert float(TokenCrossEntropy(objective)(own.logits, labels[:4])) == pytest.approx(float(own.loss), rel=1e-5)


def test_hf_sequence_classifier_uses_cross_entropy_verified_against_its_loss():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3)
    ids = torch.randint(0, 30, (16, 8), generator=torch.Generator().manual_seed(0))
    report = api.check(transformers.BertForSequenceClassification(config), _Items(ids, ids[:, 0] % 3),
                       only=["initial_loss"], device="cpu")
    assert any("own loss (CrossEntropyLoss)" in note for note in report.notes), report.notes


def test_hf_masked_lm_is_a_per_token_objective_not_a_causal_one():
    transformers = pytest.importorskip("transformers")
    from nndoctor.loading import build_subject

    config = transformers.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 30, (16, 8), generator=g)
    masked = torch.rand(16, 8, generator=g) < 0.3
    labels = torch.where(masked, ids, torch.full_like(ids, -100))  # only masked positions are scored
    subject = build_subject(Path("<test>"), transformers.BertForMaskedLM(config),
                            _Items(ids.masked_fill(masked, 0), labels), device="cpu")
    assert subject.token_objective == TokenObjective(0, -100, 30)
    assert not subject.token_objective.causal
    assert "BertForMaskedLM's own loss" in subject.loss_source
