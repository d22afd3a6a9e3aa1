import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


def digits(n: int = 256, seed: int = 0) -> TensorDataset:
    """Seed 004's data in miniature: 20x20 'images' unrolled to 400 values in [0, 1], 10 classes."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(10, 400, generator=g)
    labels = torch.arange(n) % 10
    return TensorDataset(((templates[labels] + 0.8 * torch.rand(n, 400, generator=g)) / 1.8), labels)


def seed_004_network() -> nn.Module:
    """Seed 004's 400-25-10 sigmoid network (Andrew Ng's exercise 4), emitting logits."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(400, 25), nn.Sigmoid(), nn.Linear(25, 10))


def sgd(**settings):
    return lambda params: torch.optim.SGD(params, **settings)


def adamw(**settings):
    return lambda params: torch.optim.AdamW(params, **settings)


STANDARD_RECIPES = {
    "default Adam, no decay": None,
    "SGD momentum, weight decay 5e-4": sgd(lr=0.1, momentum=0.9, weight_decay=5e-4),
    "AdamW, weight decay 0.05": adamw(lr=1e-3, weight_decay=0.05),
}


@pytest.mark.parametrize("recipe", STANDARD_RECIPES)
@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_with_standard_recipes_pass(case, recipe):
    case.optimizer = STANDARD_RECIPES[recipe]
    result = run_case("regularization_ratio", case)
    assert result.status is Status.PASS, result.summary


def test_no_regularization_passes_saying_so():
    result = run_check("regularization_ratio", zoo.mlp(), zoo.blobs(), optimizer=sgd(lr=0.1))
    assert result.status is Status.PASS
    assert result.summary == "no weight decay or penalty configured (SGD)"


def test_seed_004_l2_strength_1_fails():
    result = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), sgd(lr=0.5, weight_decay=1.0))
    assert result.status is Status.FAIL, result.summary
    assert result.metrics["gradient_ratio"] > 5  # the decay pulls ~10x harder than the data
    assert "weight-decay gradient is" in result.summary and "the data loss" in result.summary
    assert result.evidence[0].startswith("group 0: weight_decay 1 on 4 tensors (10,285 weights)")
    assert result.fix.startswith("Lower weight_decay from 1 to about 0.01")


def test_seed_004_network_with_usual_weight_decay_passes():
    result = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), sgd(lr=0.5, weight_decay=1e-4))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["gradient_ratio"] < 0.01


def test_moderate_decay_that_matches_the_data_pull_warns():
    result = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), sgd(lr=0.5, weight_decay=0.15))
    assert result.status is Status.WARN, result.summary
    assert 1 <= result.metrics["ratio"] < 3


def test_decoupled_decay_is_weighed_against_the_adam_step():
    # AdamW's decay is not a loss term: weight_decay 1 shrinks each weight by lr*w per step while
    # Adam moves it by about lr, so it does not dominate; weight_decay 1000 does.
    mild = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), adamw(lr=1e-3, weight_decay=1.0))
    assert mild.status is Status.PASS, mild.summary
    assert "AdamW's decoupled decay step is" in mild.summary
    assert mild.metrics["decoupled_step_ratio"] < 0.1 and mild.metrics["gradient_ratio"] == 0
    crushing = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), adamw(lr=1e-3, weight_decay=1000.0))
    assert crushing.status is Status.FAIL, crushing.summary


class BigVocabularyClassifier(zoo.GRUClassifier):
    """A GRU over a 5000-token vocabulary: its N(0, 1) embedding holds sum(w^2) ~ 160000."""

    def __init__(self):
        super().__init__(vocab=5000)


def test_large_l2_loss_with_a_weak_pull_passes():
    # The L2 loss is several times the data loss (the seed's warning sign), but decay 1e-4 shrinks
    # the embedding by 1e-5 per step: the gradient comparison, not the loss ratio, decides.
    torch.manual_seed(0)
    result = run_check("regularization_ratio", BigVocabularyClassifier(), zoo.tokens(vocab=5000), nn.CrossEntropyLoss(), sgd(lr=0.1, weight_decay=1e-4))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["loss_ratio"] > 3
    assert result.metrics["gradient_ratio"] < 1


def test_evidence_and_table_cover_every_parameter_group():
    def decay_weights_only(params):
        params = list(params)
        return torch.optim.SGD([
            {"params": [p for p in params if p.dim() > 1], "weight_decay": 1.0},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
        ], lr=0.5)

    result = run_check("regularization_ratio", seed_004_network(), digits(), nn.CrossEntropyLoss(), decay_weights_only)
    assert result.status is Status.FAIL, result.summary
    assert result.evidence[0].startswith("group 0: weight_decay 1 on 2 tensors (10,250 weights): L2 penalty")
    assert result.evidence[1] == "group 1: weight_decay 0 on 2 tensors (35 weights): no decay"
    (table,) = result.tables
    assert [row[0] for row in table.rows] == [0, 1]


# Seed 004 as a model file: Keras' kernel_regularizer=l2(1) adds 1 * sum(w^2) of both kernels
# to the loss, which a PyTorch training loop writes as an explicit penalty.
SEED_004_MODEL = """
import torch
from torch import nn
from torch.utils.data import TensorDataset


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(400, 25), nn.Sigmoid(), nn.Linear(25, 10))


def build_dataset():
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 400, generator=g)
    labels = torch.arange(256) % 10
    return TensorDataset((templates[labels] + 0.8 * torch.rand(256, 400, generator=g)) / 1.8, labels)


def build_optimizer(params):
    return torch.optim.SGD(params, lr=0.5)


def regularization(model):
    return STRENGTH * sum((layer.weight ** 2).sum() for layer in model if isinstance(layer, nn.Linear))


loss_fn = nn.CrossEntropyLoss()
"""


@pytest.mark.parametrize("strength, status, exit_code", [("1.0", "fail", 1), ("1e-4", "pass", 0)])
def test_explicit_penalty_from_the_model_file(tmp_path: Path, strength, status, exit_code):
    model_file = tmp_path / "model.py"
    model_file.write_text(textwrap.dedent(SEED_004_MODEL.replace("STRENGTH", strength)), encoding="utf-8")
    report_file = tmp_path / "report.json"
    outcome = CliRunner().invoke(
        app, ["check", str(model_file), "--only", "regularization_ratio", "--json", str(report_file)], catch_exceptions=False,
    )
    assert outcome.exit_code == exit_code, outcome.output
    (result,) = json.loads(report_file.read_text(encoding="utf-8"))["checks"]
    assert result["status"] == status, result["summary"]
    assert "regularization() gradient is" in result["summary"]
    assert result["metrics"]["explicit_penalty"] > 0
