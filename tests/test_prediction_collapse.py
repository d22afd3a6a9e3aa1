"""prediction_collapse: setups whose predictions collapse after a short run fail; sound ones,
including untrained-looking and imbalanced ones, pass."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


def imbalanced(n: int = 256, majority: float = 0.8, dim: int = 20, seed: int = 0) -> TensorDataset:
    """Two separable blobs (standardized), ``majority`` of the labels in class 0."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) > majority).long()
    x = torch.randn(2, dim, generator=g)[y] * 0.6 + torch.randn(n, dim, generator=g)
    return TensorDataset((x - x.mean(0)) / x.std(0), y)


def random_labels(dataset: TensorDataset, classes: int, seed: int = 1) -> TensorDataset:
    x = dataset.tensors[0]
    return TensorDataset(x, torch.randint(0, classes, (len(x),), generator=torch.Generator().manual_seed(seed)))


class ClippedLogLoss(nn.Module):
    """Keras' categorical_crossentropy: log of clipped probabilities (seeds 001/003)."""

    def forward(self, probabilities, target):
        return -probabilities.clamp(1e-7, 1 - 1e-7).gather(1, target[:, None]).log().mean()


class SharedScoreHead(nn.Module):
    """Bug: one score for all classes (a Linear(..., 1) broadcast against per-class biases), so only
    the biases tell the classes apart and the input moves every logit alike."""

    def __init__(self, dim: int = 20, classes: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 64), nn.ReLU())
        self.score = nn.Linear(64, 1)
        self.class_bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return self.score(self.body(x)) + self.class_bias


def sgd(lr: float):
    return lambda params: torch.optim.SGD(params, lr=lr)


def adam(lr: float):
    return lambda params: torch.optim.Adam(params, lr=lr)


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_do_not_collapse(case):
    result = run_case("prediction_collapse", case)
    assert result.status in (Status.PASS, Status.SKIP), result.summary


def test_slow_network_leaning_on_one_class_with_uniform_probabilities_passes():
    # An untrained CNN puts nearly every input into one class by chance; slow SGD keeps it so.
    torch.manual_seed(0)
    result = run_check("prediction_collapse", zoo.SmallCNN(classes=4), random_labels(zoo.images(n=128), 4), nn.CrossEntropyLoss(), sgd(1e-3))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["predicted_share"] >= 0.9  # counting argmax predictions alone would fail it
    assert result.metrics["over_assignment"] < 0.2


def test_imbalanced_labels_predicted_in_proportion_pass():
    torch.manual_seed(0)
    result = run_check("prediction_collapse", zoo.mlp(classes=2), imbalanced(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["predicted_share"] == pytest.approx(result.metrics["label_share"], abs=0.05)


def test_class_weighted_loss_on_imbalanced_labels_passes():
    torch.manual_seed(0)
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 9.0]))
    result = run_check("prediction_collapse", zoo.mlp(classes=2), imbalanced(majority=0.9), loss)
    assert result.status is Status.PASS, result.summary


def test_the_run_stops_early_once_a_model_fits_its_labels_and_not_before_20_steps():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    fitting = run_check("prediction_collapse", cnn, zoo.images(), nn.CrossEntropyLoss())
    assert fitting.status is Status.PASS, fitting.summary
    assert 20 <= fitting.metrics["steps"] < 60 and "stopped early" in " ".join(fitting.evidence)
    slow = run_check("prediction_collapse", zoo.SmallCNN(classes=4), random_labels(zoo.images(n=128), 4), nn.CrossEntropyLoss(), sgd(1e-3))
    assert slow.metrics["steps"] == 60


def test_compute_heavy_models_run_fewer_steps_but_never_under_20():
    # 60 steps are cut to what flop_budget allows (never under 20, which numerics relies on).
    torch.manual_seed(0)
    slow = run_check(
        "prediction_collapse", zoo.SmallCNN(classes=4), random_labels(zoo.images(n=128), 4), nn.CrossEntropyLoss(), sgd(1e-3),
        thresholds={"flop_budget": 1e3},
    )
    assert slow.status is Status.PASS and slow.metrics["steps"] == 20, slow.summary
    pinned = run_check(
        "prediction_collapse", nn.Sequential(zoo.mlp(), nn.Softmax(dim=1)), zoo.blobs(n=256), nn.CrossEntropyLoss(), adam(1.0),
        thresholds={"flop_budget": 1e3},
    )
    assert pinned.status is Status.FAIL and pinned.metrics["steps"] == 20, pinned.summary


def test_collapse_onto_the_majority_class_fails():
    # 80/20 labels, the majority logit's bias at +10 and SGD at lr 10: every input goes to class 0
    # with certainty, although a fifth of the labels say otherwise.
    torch.manual_seed(0)
    model = zoo.mlp(classes=2)
    with torch.no_grad():
        model[-1].bias[0] = 10.0
    result = run_check("prediction_collapse", model, imbalanced(), nn.CrossEntropyLoss(), sgd(10.0))
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["predicted_share"] == 1.0
    assert result.metrics["mean_probability"] > 0.99
    assert "class 0" in result.summary and "81% of the labels" in result.summary
    table = result.tables[0]
    assert table.columns[:2] == ("class", "labels") and len(table.rows) == 2


def test_softmax_before_cross_entropy_with_a_large_lr_pins_wrong_predictions():
    torch.manual_seed(0)
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    result = run_check("prediction_collapse", model, zoo.blobs(n=256), nn.CrossEntropyLoss(), adam(1.0))
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["pinned_wrong_fraction"] > 0.5
    assert "probability exactly 1.0 for a wrong answer" in result.summary
    assert "emits probabilities" in result.fix and "-inf" in result.summary


def test_hand_written_log_loss_on_probabilities_collapses():
    torch.manual_seed(0)
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    result = run_check("prediction_collapse", model, zoo.blobs(n=256), ClippedLogLoss(), sgd(10.0), task="classification")
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["predicted_share"] == 1.0


def test_pinned_but_right_predictions_pass():
    # A high learning rate memorizes the samples: some probabilities reach exactly 1.0, all rightly.
    torch.manual_seed(0)
    result = run_check("prediction_collapse", zoo.mlp(), zoo.blobs(n=256), nn.CrossEntropyLoss(), adam(1e-2))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["pinned_fraction"] > 0 and result.metrics["pinned_wrong_fraction"] == 0


def test_large_alike_logits_at_chance_fail():
    # Inputs left unnormalized make the shared score large; the classes differ only by their biases.
    torch.manual_seed(0)
    x, y = zoo.blobs(n=256).tensors
    raw = TensorDataset(x * 255 + 128, y)
    result = run_check("prediction_collapse", SharedScoreHead(), raw, nn.CrossEntropyLoss())
    assert result.status is Status.FAIL, result.summary
    assert "large and alike" in result.summary
    assert result.metrics["logit_common"] > 10 * result.metrics["logit_difference"]


def test_sound_multilabel_model_passes_on_every_label():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 10, generator=g)
    y = ((x @ torch.randn(10, 5, generator=g)) > torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5])).float()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 5))
    result = run_check("prediction_collapse", model, TensorDataset(x, y), nn.BCEWithLogitsLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["decision"].startswith("label ")


def test_regression_is_skipped():
    case = zoo.sound_case("regression")
    assert run_case("prediction_collapse", case).status is Status.SKIP


def test_logits_driven_apart_by_a_huge_learning_rate_fail():
    torch.manual_seed(0)
    result = run_check("prediction_collapse", zoo.TransformerClassifier(), zoo.tokens(), nn.CrossEntropyLoss(), adam(0.5))
    assert result.status is Status.FAIL, result.summary
    assert "softmax saturates" in result.summary
    assert "Lower the learning rate (it is 0.5)" in result.fix
