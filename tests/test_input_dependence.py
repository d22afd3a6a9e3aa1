"""input_dependence: models whose outputs ignore the input fail; sound ones, including one whose
output layer starts at zero, pass."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

# A smaller memorization run than the default, for speed: a model that uses its input beats the
# zero-input baseline early, and more steps only widen the gap.
FAST = {"baseline_steps": 60}
# the real-input run is overfit_small_batch's, shortened alike
OVERFIT = {"overfit_small_batch": {"samples": 32, "max_steps": 60}}


class IgnoresInput(nn.Module):
    """forward() returns a learned bias broadcast to the batch: the input is never used."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return self.bias.expand(x.shape[0], -1)


class MultipliesInputByZero(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = zoo.mlp()

    def forward(self, x):
        return self.net(x * 0)


class ReadsFirstToken(nn.Module):
    """Pools only position 0, which holds the same start token in every sequence."""

    def __init__(self, vocab: int = 50, classes: int = 3, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, tokens):
        return self.head(self.embed(tokens)[:, 0])


class ZeroInitHead(nn.Module):
    """Sound: the output layer starts at zero (as in ViT), so every output is 0 at init."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 64), nn.ReLU())
        self.head = nn.Linear(64, 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.body(x))


class MaskedTokens(nn.Module):
    """Sound: keyword inputs, integer tokens plus a boolean mask."""

    def __init__(self, vocab: int = 50, classes: int = 3, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens, mask):
        return self.head((self.embed(tokens) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))


class DictTokens(Dataset):
    def __init__(self):
        self.base = zoo.tokens()

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        # padding of 0-2 positions: the masks differ between samples, so zeroed batches do too
        return {"tokens": x, "mask": torch.arange(len(x)) < len(x) - i % 3}, y


class FirstInputOnly(Dataset):
    """Bug: __getitem__ returns sample 0's input with every label."""

    def __init__(self):
        self.base = zoo.blobs()

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.base[0][0], self.base[i][1]


def with_start_token(dataset: TensorDataset, token: int = 1) -> TensorDataset:
    x, y = dataset.tensors
    return TensorDataset(torch.cat([torch.full((len(x), 1), token), x], dim=1), y)


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_depend_on_their_input(case):
    result = run_case("input_dependence", case, thresholds=FAST, also=OVERFIT)
    assert result.status is Status.PASS, result.summary
    zero = result.metrics["zero_loss"]
    assert result.metrics["real_loss"] < (result.metrics["zero_loss_bound"] if zero is None else zero)


def test_model_beating_the_constant_bound_needs_no_zero_input_run():
    torch.manual_seed(0)
    result = run_check("input_dependence", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["zero_loss"] is None
    # the best constant prediction of 4 balanced-ish classes: close to ln 4
    assert 1.2 < result.metrics["zero_loss_bound"] <= 1.3863
    assert result.metrics["gain"] > 0.5
    assert "best prediction that ignores the input" in result.summary


def test_class_weights_make_the_constant_bound_inexact_so_the_zero_input_run_is_made():
    # With class weights the prior is not the best constant prediction: no shortcut.
    torch.manual_seed(0)
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 1.0]))
    result = run_check("input_dependence", zoo.mlp(), zoo.blobs(), loss, thresholds=FAST, also=OVERFIT)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["zero_loss"] > result.metrics["real_loss"]


def test_forward_that_ignores_its_input_fails():
    torch.manual_seed(0)
    result = run_check("input_dependence", IgnoresInput(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["relative_spread"] == 0
    assert result.metrics["identical_curves"] is True
    assert "exactly the same losses" in result.summary
    assert any("no layer ran" in line for line in result.evidence)


def test_input_multiplied_by_zero_fails_and_names_the_first_layer():
    torch.manual_seed(0)
    result = run_check("input_dependence", MultipliesInputByZero(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["gain"] == 0
    assert any("(net.0)" in line for line in result.evidence), result.evidence


def test_all_zero_weights_predict_the_same_value_for_every_input():
    # seed 004: weights initialized to zero; leaky ReLU(0) = 0 keeps every layer at zero forever.
    model = nn.Sequential(nn.Linear(20, 32), nn.LeakyReLU(), nn.Linear(32, 32), nn.LeakyReLU(), nn.Linear(32, 4))
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    result = run_check("input_dependence", model, zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.FAIL, result.summary


def test_model_reading_only_the_constant_start_token_fails():
    torch.manual_seed(0)
    result = run_check("input_dependence", ReadsFirstToken(), with_start_token(zoo.tokens()), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.FAIL, result.summary
    assert "same value for every input" in result.summary
    assert any("embed" in line or "head.0" in line for line in result.evidence), result.evidence


def test_dataset_returning_one_input_for_every_index_fails():
    torch.manual_seed(0)
    result = run_check("input_dependence", zoo.mlp(), FirstInputOnly(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.FAIL, result.summary
    assert "inputs of the batch are identical" in result.summary
    assert "__getitem__" in result.fix


def test_zero_initialized_output_layer_passes():
    torch.manual_seed(0)
    result = run_check("input_dependence", ZeroInitHead(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["relative_spread"] == 0
    assert any("zero-initialized" in line for line in result.evidence)


def test_keyword_inputs_keep_their_boolean_mask_when_zeroed():
    torch.manual_seed(0)
    result = run_check("input_dependence", MaskedTokens(), DictTokens(), nn.CrossEntropyLoss(), thresholds=FAST, also=OVERFIT)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["zero_loss"] > result.metrics["real_loss"]


def test_min_gain_is_a_threshold():
    case = zoo.sound_case("mlp")
    result = run_case("input_dependence", case, thresholds={**FAST, "min_gain": 0.99}, also=OVERFIT)
    assert result.status is not Status.PASS, result.summary
    assert "needed 99%" in result.summary
