"""batch_independence: broken models that mix the samples of a batch fail; sound ones pass.

Each broken model sits beside its sound twin (the same model with the bug fixed), so a test that
passes for the wrong reason (a check that fails everything) shows up at once.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nndoctor.errors import InputError
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

CHECK = "batch_independence"
LENGTH, VOCAB, DIM, CLASSES = 12, 50, 16, 3


def sequences(n: int = 64, seed: int = 0) -> TensorDataset:
    """Float sequences (n, LENGTH, 6) with labels (what they are does not matter here)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, LENGTH, 6, generator=g)
    return TensorDataset(x, torch.arange(n) % CLASSES)


def padded_tokens(n: int = 64, seed: int = 0) -> TensorDataset:
    """Token sequences of varying length, right-padded with 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, VOCAB, (n, LENGTH), generator=g)
    lengths = torch.randint(3, LENGTH + 1, (n,), generator=g)
    x[torch.arange(LENGTH) >= lengths[:, None]] = 0
    return TensorDataset(x, torch.arange(n) % CLASSES)


class SequenceGRU(nn.Module):
    """A sequence-first GRU fed batch-first data: transpose is right, view mixes the samples."""

    def __init__(self, reorder):
        super().__init__()
        self.reorder = reorder
        self.rnn = nn.GRU(6, DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        out, _ = self.rnn(self.reorder(x))
        return self.head(out[-1])


def transpose(x):
    return x.transpose(0, 1)


def view_instead_of_transpose(x):
    return x.view(x.shape[1], x.shape[0], -1)


class BatchCentred(nn.Module):
    """Centres its input with the batch mean: each prediction depends on the whole batch."""

    def __init__(self):
        super().__init__()
        self.mlp = zoo.mlp()

    def forward(self, x):
        return self.mlp(x - x.mean(0))


class TokenGRU(nn.Module):
    """Embedding then a GRU; ``batch_first`` or a reshape decides whether samples stay apart."""

    def __init__(self, batch_first=True, reshape_to_sequence_first=False):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.rnn = nn.GRU(DIM, DIM, batch_first=batch_first)
        self.head = nn.Linear(DIM, CLASSES)
        self.reshape_to_sequence_first = reshape_to_sequence_first

    def forward(self, x):
        h = self.embed(x)
        if self.reshape_to_sequence_first:  # meant as transpose(0, 1)
            h = h.reshape(x.shape[1], x.shape[0], -1)
        out, _ = self.rnn(h)
        return self.head(out[-1] if self.reshape_to_sequence_first else out[:, -1])


class MaskedAttention(nn.Module):
    """Self-attention with a per-head padding mask of shape (batch * heads, L, L). PyTorch orders
    that axis batch-major, so the mask must be expanded with repeat_interleave; repeat hands each
    sample the padding of other samples (a dependency no gradient sees)."""

    heads = 2

    def __init__(self, interleave=True):
        super().__init__()
        self.interleave = interleave
        self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.attn = nn.MultiheadAttention(DIM, self.heads, batch_first=True)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        h = self.embed(x)
        padded = (x == 0)[:, None, :].expand(-1, x.shape[1], -1).float() * -1e9
        mask = padded.repeat_interleave(self.heads, dim=0) if self.interleave else padded.repeat(self.heads, 1, 1)
        h, _ = self.attn(h, h, h, attn_mask=mask)
        keep = (x != 0).float()[..., None]
        return self.head((h * keep).sum(1) / keep.sum(1))


class TokenAttention(nn.Module):
    """nn.MultiheadAttention defaults to (seq, batch, feature): without batch_first=True it
    attends across the batch."""

    def __init__(self, batch_first=True):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.attn = nn.MultiheadAttention(DIM, 2, batch_first=batch_first)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        h = self.embed(x)
        h, _ = self.attn(h, h, h)
        return self.head(h.mean(1))


class BatchStatisticsCNN(nn.Module):
    """Batch norm without running statistics normalises with the batch's even in eval mode: a
    legitimate design the check must not flag."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8, track_running_stats=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class AlwaysOnDropout(nn.Module):
    """Dropout active even in eval mode (MC dropout): random, but per sample."""

    def __init__(self):
        super().__init__()
        self.mlp = zoo.mlp()

    def forward(self, x):
        return self.mlp(F.dropout(x, 0.5, training=True))


class TokensAndFeatures(Dataset):
    """Dict inputs: integer tokens and float features."""

    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
        self.features = torch.randn(n, 5, generator=g)
        self.labels = torch.arange(n) % CLASSES

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"tokens": self.tokens[i], "features": self.features[i]}, self.labels[i]


class DictModel(nn.Module):
    def __init__(self, centre_features=False):
        super().__init__()
        self.centre_features = centre_features
        self.embed = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM + 5, CLASSES)

    def forward(self, tokens, features):
        if self.centre_features:
            features = features - features.mean(0)
        return self.head(torch.cat([self.embed(tokens).mean(1), features], dim=1))


class PairModel(nn.Module):
    """Two positional inputs (a tuple batch)."""

    def __init__(self):
        super().__init__()
        self.left, self.right = nn.Linear(20, 16), nn.Linear(20, 16)
        self.head = nn.Linear(32, 4)

    def forward(self, a, b):
        return self.head(torch.relu(torch.cat([self.left(a), self.right(b)], dim=1)))


class PairDataset(Dataset):
    def __init__(self):
        self.blobs = zoo.blobs(n=64)

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        x, y = self.blobs[i]
        return (x, -x), y


class SequenceFirstTagger(nn.Module):
    """Per-token logits returned sequence-first, (L, batch, classes): sound, but not batch-first."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        return self.head(self.embed(x)).transpose(0, 1)


def run(model, dataset, **kwargs):
    return run_check(CHECK, model, dataset, nn.CrossEntropyLoss(), **kwargs)


# --- sound models pass ------------------------------------------------------------------------


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_zoo_models_pass(case):
    result = run_case(CHECK, case)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["gradient_leak"] == 0
    assert result.metrics["output_change"] == 0


def test_token_models_take_the_gradient_at_the_embedding():
    result = run_case(CHECK, zoo.sound_case("gru_tokens"))
    assert any("embed output" in line for line in result.evidence)


def test_resnet18_passes():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(num_classes=10)
    result = run(model, zoo.images(n=16, size=32))
    assert result.status is Status.PASS, result.summary


@pytest.mark.parametrize(
    "model, dataset",
    [
        (SequenceGRU(transpose), sequences()),
        (TokenGRU(batch_first=True), zoo.tokens()),
        (MaskedAttention(interleave=True), padded_tokens()),
        (TokenAttention(batch_first=True), zoo.tokens()),
        (DictModel(), TokensAndFeatures()),
        (PairModel(), PairDataset()),
        (AlwaysOnDropout(), zoo.blobs()),
    ],
    ids=["transposed_gru", "batch_first_gru", "interleaved_mask", "batch_first_attention", "dict_inputs", "tuple_inputs", "always_on_dropout"],
)
def test_sound_variants_pass(model, dataset):
    result = run(model, dataset)
    assert result.status is Status.PASS, result.summary


def test_batch_norm_without_running_statistics_is_not_a_leak():
    result = run(BatchStatisticsCNN(), zoo.images(n=16))
    assert result.status is Status.PASS, result.summary
    assert any("features.1" in line for line in result.evidence)


# --- broken models fail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, dataset, mixed_at",
    [
        (SequenceGRU(view_instead_of_transpose), sequences(), "rnn"),
        (BatchCentred(), zoo.blobs(), "mlp.0"),
        (TokenGRU(batch_first=False, reshape_to_sequence_first=True), zoo.tokens(), "rnn"),
        (TokenGRU(batch_first=False), zoo.tokens(), "rnn"),
        (TokenAttention(batch_first=False), zoo.tokens(), "attn"),
        (DictModel(centre_features=True), TokensAndFeatures(), "head"),
    ],
    ids=["view_instead_of_transpose", "batch_mean_subtracted", "token_reshape", "gru_without_batch_first", "attention_across_batch", "dict_feature_centring"],
)
def test_models_mixing_samples_fail(model, dataset, mixed_at):
    result = run(model, dataset)
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["gradient_leak"] > 1e-3  # the gradient sees these mixes
    assert result.metrics["first_mixed_at"] == mixed_at
    assert f"`{mixed_at}`" in result.fix


def test_repeated_instead_of_interleaved_mask_fails_by_swap():
    result = run(MaskedAttention(interleave=False), padded_tokens())
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["gradient_leak"] == 0  # a mask takes no gradient: only the swap sees it
    assert result.metrics["output_change"] > 1e-2
    assert result.metrics["first_mixed_at"] == "attn"
    # (batch * heads) is read batch-major, repeat lays it out head-major: head h of the focus
    # reads the mask at row focus * heads + h, which belongs to sample (focus * heads + h) % size
    focus, size, heads = result.metrics["focus_sample"], result.metrics["samples"], MaskedAttention.heads
    assert result.metrics["leaking_samples"] == sorted({(focus * heads + h) % size for h in range(heads)} - {focus})


def zero_last_layer(mlp: nn.Sequential) -> None:
    with torch.no_grad():
        mlp[-1].weight.zero_()
        mlp[-1].bias.zero_()


def test_mix_hidden_by_a_zero_initialised_head_warns():
    """A zero head makes every prediction constant at init, so neither the gradient nor the
    prediction shows the mix; the activations before the head still do."""
    model = BatchCentred()
    zero_last_layer(model.mlp)
    result = run(model, zoo.blobs())
    assert result.status is Status.WARN, result.summary
    assert result.metrics["output_change"] == 0
    assert result.metrics["first_mixed_at"] == "mlp.0"


def test_sound_model_with_a_zero_initialised_head_passes():
    model = zoo.mlp()
    zero_last_layer(model)
    result = run(model, zoo.blobs())
    assert result.status is Status.PASS, result.summary


def test_summary_names_the_leaking_samples():
    result = run(BatchCentred(), zoo.blobs())
    focus = result.metrics["focus_sample"]
    assert result.metrics["leaking_samples"] == [s for s in range(result.metrics["samples"]) if s != focus]
    assert f"sample {focus}'s prediction depends on samples" in result.summary


# --- what it cannot judge ---------------------------------------------------------------------


def test_sequence_first_predictions_are_skipped():
    def loss(output, target):
        return F.cross_entropy(output.permute(1, 2, 0), target)

    data = zoo.tokens()
    tagged = TensorDataset(data.tensors[0], data.tensors[0] % CLASSES)
    result = run_check(CHECK, SequenceFirstTagger(), tagged, loss, task="classification")
    assert result.status is Status.SKIP
    assert "dimension 0" in result.summary


def test_a_single_sample_is_refused_before_any_check():
    """One sample leaves nothing to compare or batch (batch norm fails): an input error, not a skip
    here and a wrong verdict elsewhere."""
    data = TensorDataset(torch.randn(1, 20), torch.tensor([0]))
    with pytest.raises(InputError, match="single sample"):
        run(zoo.mlp(), data)


def test_thresholds_are_overridable():
    result = run(BatchCentred(), zoo.blobs(), thresholds={"tolerance": 1e9, "change_tolerance": 1e9})
    assert result.status is Status.PASS


# --- batch position: permuting the batch must permute the predictions and nothing else -------

ZOO_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"


def test_positional_encoding_indexed_by_the_batch_axis_fails_with_its_code():
    """pe[:x.size(0)] on a batch-first tensor: no sample reads another's inputs (the gradient and
    swap measurements see nothing), but each sample's prediction depends on its place in the batch."""
    from nndoctor.engine import run_path
    from nndoctor.options import RunOptions

    result = run_path(ZOO_DIR / "broken_positional_encoding_batch_axis.py", options=RunOptions(only=("batch_independence",), seed=0, device="cpu")).result("batch_independence")
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("batch_independence.batch_position",)
    assert result.metrics["gradient_leak"] == 0 and result.metrics["output_change"] == 0
    assert result.metrics["position_change"] > 0.01


def test_positional_encoding_indexed_by_the_sequence_axis_passes():
    from nndoctor.engine import run_path
    from nndoctor.options import RunOptions

    result = run_path(ZOO_DIR / "sound_positional_encoding_sequence_axis.py", options=RunOptions(only=("batch_independence",), seed=0, device="cpu")).result("batch_independence")
    assert result.status is Status.PASS, result.summary
    assert "position_change" not in result.metrics
