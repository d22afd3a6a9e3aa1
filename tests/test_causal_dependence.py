"""causal_dependence on real language models: a causal transformer and Hugging Face GPT-2 pass,
the same transformer without its mask and BERT used as a causal LM (an encoder, is_decoder off)
fail; objectives that are not next-token prediction are skipped."""

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset, TensorDataset

from nndoctor.engine import run_path
from nndoctor.options import RunOptions
from nndoctor.result import Status
from tests.conftest import run_check

ZOO = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"


def _zoo(name: str, check: str = "causal_dependence"):
    report = run_path(ZOO / f"{name}.py", options=RunOptions(only=(check,), seed=0, device="cpu"))
    return report.result(check)


def test_causal_transformer_lm_passes():
    result = _zoo("sound_causal_lm_zipf")
    assert result.status is Status.PASS, result.summary
    assert all(change == 0 for change in result.metrics["changes"])


def test_lm_without_causal_mask_fails_with_its_code():
    result = _zoo("broken_lm_no_causal_mask")
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("causal_dependence.sees_future",)
    assert result.metrics["first_leaking_position"] == 0  # the first output already sees the last token


def test_hf_gpt2_lm_passes():
    result = _zoo("sound_hf_gpt2_lm")
    assert result.status is Status.PASS, result.summary


class _Items(Dataset):
    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i].clone()}


def test_bert_encoder_used_as_causal_lm_fails():
    """BertLMHeadModel computes a shifted next-token loss; with is_decoder=False its attention is
    bidirectional, so every position sees the token it predicts."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=16, is_decoder=False)
    ids = torch.randint(0, 60, (32, 12), generator=torch.Generator().manual_seed(0))
    result = run_check("causal_dependence", transformers.BertLMHeadModel(config), _Items(ids))
    assert result.status is Status.FAIL, result.summary
    config.is_decoder = True
    result = run_check("causal_dependence", transformers.BertLMHeadModel(config), _Items(ids))
    assert result.status is Status.PASS, result.summary


def test_token_tagging_is_not_judged(monkeypatch):
    """Labels at the same position (not the next input token): a bidirectional tagger is sound."""
    monkeypatch.syspath_prepend(str(ZOO))
    from _zoo_common import TokenLM

    ids = torch.randint(0, 100, (32, 12), generator=torch.Generator().manual_seed(0))
    tags = (ids % 3)
    result = run_check(
        "causal_dependence", TokenLM(causal=False), TensorDataset(ids, tags),
        loss_fn=lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)),
    )
    assert result.status is Status.SKIP, result.summary


def test_prefix_lm_reading_its_unscored_prompt_both_ways_passes(monkeypatch):
    """A prefix LM attends bidirectionally within the prompt, whose labels are ignored: only the
    scored outputs (the answer's) must not see later tokens. Without the prompt masked from the
    loss, the same model fails: its scored prompt outputs read later prompt tokens."""
    monkeypatch.syspath_prepend(str(ZOO))
    from _zoo_common import TokenLM, zipf_token_sequences

    prompt = 6

    class PrefixLM(TokenLM):
        def forward(self, x):
            length = x.shape[1]
            i = torch.arange(length)
            allowed = (i[None, :] <= i[:, None]) | ((i[:, None] < prompt) & (i[None, :] < prompt))
            h = self.embed(x) + self.position[:length]
            return self.head(self.encoder(h, mask=~allowed.to(x.device)))

    ids = zipf_token_sequences(n=64)
    x, y = ids[:, :-1], ids[:, 1:].clone()
    loss = lambda out, t: F.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1))  # noqa: E731
    unscored_prompt = y.clone()
    unscored_prompt[:, : prompt - 1] = -100
    result = run_check("causal_dependence", PrefixLM(), TensorDataset(x, unscored_prompt), loss_fn=loss)
    assert result.status is Status.PASS, result.summary
    result = run_check("causal_dependence", PrefixLM(), TensorDataset(x, y), loss_fn=loss)
    assert result.status is Status.FAIL, result.summary
