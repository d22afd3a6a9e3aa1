import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass_or_skip(case):
    result = run_case("input_normalization", case)
    assert result.status in (Status.PASS, Status.SKIP), result.summary


def _unit_images() -> TensorDataset:
    """zoo.images() rescaled to [0, 1], as ToTensor() leaves them."""
    x, y = zoo.images().tensors
    return TensorDataset((x - x.min()) / (x.max() - x.min()), y)


def test_raw_pixels_fail():
    x, y = _unit_images().tensors
    result = run_check("input_normalization", zoo.SmallCNN(), TensorDataset((x * 255).round(), y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "3 of 3 channels" in result.summary and "raw pixels" in result.summary
    assert "Normalize" in result.fix


def test_unit_interval_images_warn():
    result = run_check("input_normalization", zoo.SmallCNN(), _unit_images(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "[0, 1]" in result.summary


def test_unscaled_tabular_features_fail():
    x, y = zoo.blobs().tensors
    result = run_check("input_normalization", zoo.mlp(), TensorDataset(x * 30 + 100, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "20 of 20 features" in result.summary
    assert result.metrics["max_std"] > 20


def test_one_unscaled_feature_among_standardized_ones_fails_and_is_named():
    x, y = zoo.blobs().tensors
    x = x.clone()
    x[:, 7] = x[:, 7] * 500 + 2000  # e.g. an income column left in currency units
    result = run_check("input_normalization", zoo.mlp(), TensorDataset(x, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "1 of 20 features" in result.summary and "feature 7" in result.summary


def test_standardized_features_with_one_hot_and_constant_columns_pass():
    g = torch.Generator().manual_seed(0)
    x, y = zoo.blobs().tensors
    category = nn.functional.one_hot(torch.multinomial(torch.tensor([0.7, 0.2, 0.08, 0.02]), len(x), True, generator=g), 4)
    flag = (torch.rand(len(x), 1, generator=g) < 0.9).float()  # mean 0.9, std 0.3: mean/std = 3
    table = torch.cat([x[:, :14], category.float(), flag, torch.zeros(len(x), 1)], dim=1)
    result = run_check("input_normalization", zoo.mlp(), TensorDataset(table, y), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["constant"] == 1
    assert any("constant" in line and "feature 19" in line for line in result.evidence)


def test_unscaled_feature_of_a_sequence_is_found_along_the_feature_dim():
    x = torch.randn(256, 30, 6, generator=torch.Generator().manual_seed(0))
    x[:, :, 2] = x[:, :, 2] * 50 + 300

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(6, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, seq):
            return self.head(self.rnn(seq)[0][:, -1])

    result = run_check("input_normalization", Recurrent(), TensorDataset(x, torch.arange(256) % 3), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "1 of 6 features" in result.summary and "feature 2" in result.summary


def test_token_ids_skip():
    result = run_check("input_normalization", zoo.GRUClassifier(), zoo.tokens(), nn.CrossEntropyLoss())
    assert result.status is Status.SKIP
    assert "integer" in result.summary


def test_thresholds_are_overridable():
    x, y = zoo.blobs().tensors
    lenient = {"mean_fail": 1e3, "mean_warn": 1e3, "std_fail_high": 1e3, "std_warn_high": 1e3}
    result = run_check("input_normalization", zoo.mlp(), TensorDataset(x * 30 + 100, y), nn.CrossEntropyLoss(), thresholds=lenient)
    assert result.status is Status.PASS, result.summary


@pytest.mark.parametrize("norm", [nn.BatchNorm1d(20), nn.LayerNorm(20)])
def test_unscaled_features_pass_when_the_models_first_layer_standardizes_them(norm):
    # the "input BatchNorm" idiom: what the first weight layer receives is standardized
    x, y = zoo.blobs().tensors
    model = nn.Sequential(norm, nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
    result = run_check("input_normalization", model, TensorDataset(x * 30 + 100, y), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["standardized_by_model"] is True
    assert f"0 ({type(norm).__name__})" in result.evidence[0]


def test_unscaled_features_still_fail_when_the_normalization_comes_after_a_weight_layer():
    x, y = zoo.blobs().tensors
    model = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    result = run_check("input_normalization", model, TensorDataset(x * 30 + 100, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL


def test_rmsnorm_first_does_not_count_as_standardization():
    # RMSNorm scales but does not centre: an offset of 100 survives it as a near-constant signal
    x, y = zoo.blobs().tensors
    model = nn.Sequential(nn.RMSNorm(20), nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
    result = run_check("input_normalization", model, TensorDataset(x * 30 + 100, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
