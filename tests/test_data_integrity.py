import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, random_split

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

pytestmark = pytest.mark.filterwarnings("ignore:Using a target size")  # MSELoss's own broadcast warning


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("data_integrity", case)
    assert result.status is Status.PASS, result.summary


def _soft_labels() -> TensorDataset:
    x, y = zoo.blobs().tensors
    return TensorDataset(x, nn.functional.one_hot(y, 4).float() * 0.9 + 0.025)


@pytest.mark.parametrize(
    "model, dataset, loss",
    [
        (zoo.Tagger(), zoo.padded_tags(), nn.CrossEntropyLoss()),
        (zoo.mlp(), _soft_labels(), nn.CrossEntropyLoss()),
        (zoo.mlp(), random_split(zoo.blobs(), [400, 112], generator=torch.Generator().manual_seed(0))[0], nn.CrossEntropyLoss()),
        (nn.Sequential(zoo.mlp(), nn.LogSoftmax(dim=1)), zoo.blobs(), nn.NLLLoss()),
        (nn.Sequential(nn.Linear(10, 1), nn.Sigmoid()), zoo.binary(), nn.BCELoss()),
    ],
    ids=["padded_tags_ignore_index", "soft_labels", "subset", "nll_log_softmax", "bce_on_probabilities"],
)
def test_other_sound_setups_pass(model, dataset, loss):
    result = run_check("data_integrity", model, dataset, loss)
    assert result.status is Status.PASS, result.summary


def test_nan_inputs_fail_naming_the_samples():
    x, y = zoo.blobs().tensors
    x = x.clone()
    x[[3, 40, 77], 5] = float("nan")
    result = run_check("data_integrity", zoo.mlp(), TensorDataset(x, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "NaN in the inputs of 3 samples" in result.summary
    assert any("3, 40, 77" in line for line in result.evidence)


def test_inf_target_fails():
    x, y = zoo.regression().tensors
    y = y.clone()
    y[5] = float("inf")
    result = run_check("data_integrity", nn.Linear(8, 1), TensorDataset(x, y), nn.MSELoss())
    assert result.status is Status.FAIL
    assert "Inf in the targets of 1 sample" in result.summary
    assert any("indices 5" in line for line in result.evidence)


def test_nan_beyond_the_scan_is_found_in_a_stored_dataset():
    x = torch.randn(5000, 4)
    x[4321, 2] = float("nan")
    y = torch.randint(0, 3, (5000,))
    result = run_check("data_integrity", nn.Linear(4, 3), TensorDataset(x, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert any("4321" in line for line in result.evidence)


def test_one_based_labels_fail_instead_of_crashing():
    x, y = zoo.images().tensors
    result = run_check("data_integrity", zoo.SmallCNN(), TensorDataset(x, y + 1), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL  # run_check also asserts the check did not crash
    assert "labels span 1..10" in result.summary and "10 classes" in result.summary
    assert "1-based" in result.fix


def test_labels_beyond_a_narrow_output_fail():
    x, y = zoo.blobs().tensors
    result = run_check("data_integrity", zoo.mlp(classes=3), TensorDataset(x, y), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "4 outputs" in result.fix


class OneBasedOnDisk(Dataset):
    """Stores 1-based labels in .targets but returns 0-based ones: only what __getitem__ gives counts."""

    def __init__(self):
        self.inputs, labels = zoo.blobs().tensors
        self.targets = (labels + 1).tolist()

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.inputs[i], self.targets[i] - 1


def test_stored_targets_that_differ_from_the_items_are_not_trusted():
    result = run_check("data_integrity", zoo.mlp(), OneBasedOnDisk(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


@pytest.mark.parametrize("scale, shift, shown", [(255.0, 0.0, "{0, 255}"), (2.0, -1.0, "{-1, 1}")])
def test_bce_targets_outside_0_1_fail(scale, shift, shown):
    x, y = zoo.binary().tensors
    result = run_check("data_integrity", nn.Linear(10, 1), TensorDataset(x, y * scale + shift), nn.BCEWithLogitsLoss())
    assert result.status is Status.FAIL
    assert shown in result.summary


def test_soft_targets_that_are_not_distributions_fail():
    x, soft = _soft_labels().tensors
    result = run_check("data_integrity", zoo.mlp(), TensorDataset(x, soft * 2), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "probability vectors" in result.summary


def test_mse_output_column_against_flat_targets_fails_as_broadcast():
    x, y = zoo.regression().tensors
    result = run_check("data_integrity", nn.Linear(8, 1), TensorDataset(x, y.squeeze(1)), nn.MSELoss())
    assert result.status is Status.FAIL
    assert "broadcast to (8, 8)" in result.summary


def test_hand_written_loss_that_broadcasts_fails():
    x, y = zoo.regression().tensors
    result = run_check(
        "data_integrity", nn.Linear(8, 1), TensorDataset(x, y.squeeze(1)),
        lambda output, target: ((output - target) ** 2).mean(), task="regression",
    )
    assert result.status is Status.FAIL
    assert "broadcasts" in result.summary


def test_hand_written_loss_that_reshapes_passes():
    x, y = zoo.binary().tensors
    result = run_check(
        "data_integrity", nn.Linear(10, 1), TensorDataset(x, y.squeeze(1).long()),
        lambda output, target: nn.functional.binary_cross_entropy_with_logits(output.squeeze(1), target.float()),
    )
    assert result.status is Status.PASS, result.summary


def test_tiny_dataset_warns():
    x, y = zoo.blobs().tensors
    result = run_check("data_integrity", zoo.mlp(), TensorDataset(x[:20], y[:20]), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "only 20 samples" in result.summary
