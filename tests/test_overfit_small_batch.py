"""overfit_small_batch on real models: sound setups memorize 50 samples and pass; broken ones fail
with the failure pattern that points at their bug."""

from pathlib import Path

import pytest
import torch
from torch import nn

from nndoctor.context import Context
from nndoctor.curves import Pattern
from nndoctor.loading import build_subject
from nndoctor.probes.overfit import OverfitSettings, small_batch_run
from nndoctor.result import Status
from nndoctor.training import without_regularization
from tests import zoo
from tests.conftest import run_case, run_check

CHECK = "overfit_small_batch"
SHORT = {"max_steps": 300}  # enough for every failure below to show its pattern


def overfit(model, dataset=None, loss_fn=None, optimizer=None, task=None, **thresholds):
    dataset = dataset if dataset is not None else zoo.blobs()
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    return run_check(CHECK, model, dataset, loss_fn, optimizer, task, thresholds=thresholds or None)


def sgd(lr, momentum=0.0, **kwargs):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, **kwargs)


class ConstantLogits(nn.Module):
    """Ignores its input: returns one learned logit vector for every sample."""

    def __init__(self, classes=4):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


class NegatedCrossEntropy(nn.Module):
    """A sign error in a hand-written loss: minimizing it maximizes the cross-entropy."""

    def forward(self, output, target):
        return -nn.functional.cross_entropy(output, target)


class NoiseInsteadOfInput(nn.Module):
    """A training-time transform gone wrong: in train mode the input is replaced by noise."""

    def __init__(self):
        super().__init__()
        self.net = zoo.mlp()

    def forward(self, x):
        return self.net(torch.randn_like(x) if self.training else x)


def zero_initialized_mlp():
    model = zoo.mlp()
    for param in model.parameters():
        nn.init.zeros_(param)
    return model


def bn_dropout_mlp():
    return nn.Sequential(
        nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 4),
    )


# --- sound setups pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_memorize_50_samples(case):
    result = run_case(CHECK, case)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["final_loss"] <= result.metrics["goal_loss"]
    assert result.metrics["steps"] < 1000  # stopped as soon as the goal was reached


@pytest.mark.parametrize(
    "name, model, optimizer",
    [
        ("mlp_sgd_momentum", zoo.mlp, sgd(0.1, momentum=0.9)),
        ("batchnorm_dropout_adam", bn_dropout_mlp, None),
        ("batchnorm_dropout_sgd", bn_dropout_mlp, sgd(0.1, momentum=0.9)),
    ],
)
def test_sound_optimizers_and_normalization_pass(name, model, optimizer):
    torch.manual_seed(0)
    result = overfit(model(), optimizer=optimizer)
    assert result.status is Status.PASS, result.summary


def test_label_smoothing_is_judged_against_its_floor():
    """With smoothing 0.1 over 4 classes no prediction scores below 0.349; the goal sits above it."""
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["floor"] == pytest.approx(0.349, abs=0.002)


def test_pass_summary_carries_the_figures_and_the_curve_is_attached():
    torch.manual_seed(0)
    result = overfit(zoo.mlp())
    assert "reached loss" in result.summary and "accuracy 1.00" in result.summary
    assert any(line.startswith("loss at step 0:") for line in result.evidence)
    plot = result.plots[0]
    assert plot.name == "overfit_loss"
    steps, losses = plot.series[0][1], plot.series[0][2]
    assert len(steps) == result.metrics["steps"] + 1 and losses[0] == result.metrics["initial_loss"]


# --- broken setups fail, each with its pattern ---------------------------------------------------


def test_softmax_before_cross_entropy_plateaus_at_a_loss_floor():
    """Probabilities used as logits: Adam gets every prediction right, but the loss cannot go
    below log(1 + 3/e) = 0.744 for 4 classes, far above zero."""
    torch.manual_seed(0)
    result = overfit(nn.Sequential(zoo.mlp(), nn.Softmax(dim=1)))
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.PLATEAU.value
    assert result.metrics["final_loss"] == pytest.approx(0.744, abs=0.01)
    assert result.metrics["final_accuracy"] == 1.0
    assert "output_head" in result.fix and "logits" in result.fix
    # The plateau is plain long before the 1000-step budget: the run stops once its goal is out
    # of reach (curves.out_of_reach), with the same pattern and loss.
    assert 300 <= result.metrics["steps"] < 1000


def test_relu_on_logits_stalls():
    """ReLU'd logits cannot go below 0, and a logit unit that is dead for a sample never recovers:
    those samples stay at chance while the rest are fit."""
    torch.manual_seed(0)
    result = overfit(nn.Sequential(zoo.mlp(), nn.ReLU()), **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.PLATEAU.value
    assert "ReLU" in result.fix


def test_zero_initialized_mlp_cannot_break_symmetry():
    result = overfit(zero_initialized_mlp())
    assert 300 <= result.metrics["steps"] < 1000  # out of reach: stopped before the full budget
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.PLATEAU.value
    assert any("same output" in line for line in result.evidence)
    assert "weight_init" in result.fix


def test_model_that_ignores_its_input_plateaus_at_the_class_prior():
    result = overfit(ConstantLogits(), **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.PLATEAU.value
    assert result.metrics["final_loss"] >= result.metrics["constant_baseline"] - 0.01
    assert "do not depend on its inputs" in result.fix


def test_random_forward_is_reported():
    torch.manual_seed(0)
    result = overfit(NoiseInsteadOfInput(), **SHORT)
    assert result.status is Status.FAIL
    assert any("forward pass is random" in line for line in result.evidence)
    assert any("best constant prediction" in line for line in result.evidence)


def test_learning_rate_far_too_high_explodes():
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), optimizer=sgd(100.0), **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.EXPLODING.value
    assert result.metrics["nonfinite_step"] is not None
    assert "Lower the learning rate" in result.fix


def test_learning_rate_far_too_low_plateaus_with_still_weights():
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), optimizer=sgd(1e-7), **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.PLATEAU.value
    assert any("weights moved by" in line for line in result.evidence)
    assert "raise the learning rate" in result.fix


def test_negated_loss_is_a_sign_error():
    """-CrossEntropy falls without bound while predictions get worse."""
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), loss_fn=NegatedCrossEntropy(), task="classification", **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.RISING.value
    assert "without bound" in result.summary
    assert "sign error" in result.fix


@pytest.mark.parametrize("optimizer", [
    lambda p: torch.optim.Adam(p, lr=1e-3, maximize=True),
    sgd(0.1, momentum=0.9, maximize=True),  # climbs until it turns NaN: still a sign error
], ids=["adam", "sgd"])
def test_maximizing_optimizer_is_rising(optimizer):
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), optimizer=optimizer, **SHORT)
    assert result.status is Status.FAIL
    assert result.metrics["pattern"] == Pattern.RISING.value
    assert result.metrics["first_step_change"] > 0
    assert any("first step climbed the loss" in line for line in result.evidence)


def test_slow_but_healthy_training_only_warns():
    """Plain SGD without momentum at lr 0.01 learns, but needs ~1000 steps; with 300 it is still
    falling, which is a warning with a projection, not a failure."""
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), optimizer=sgd(0.01), **SHORT)
    assert result.status is Status.WARN, result.summary
    assert result.metrics["pattern"] == Pattern.STILL_FALLING.value
    assert "more steps" in result.summary


# --- contract: thresholds, isolation, sharing -----------------------------------------------------


def test_thresholds_are_overridable():
    torch.manual_seed(0)
    result = overfit(zoo.mlp(), max_steps=5)
    assert result.status is not Status.PASS
    assert result.metrics["steps"] == 5


def test_user_model_is_not_modified():
    torch.manual_seed(0)
    model = bn_dropout_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    overfit(model, **SHORT)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model[3].p == 0.5 and model.training


def test_compute_heavy_models_overfit_fewer_samples():
    # One full-batch forward pass is kept within batch_flops: a model whose 50 samples cost more
    # overfits fewer (never under 16), with the same verdicts; small models keep all 50.
    torch.manual_seed(0)
    assert overfit(zoo.mlp()).metrics["samples"] == 50
    heavy = overfit(zoo.mlp(), batch_flops=1e3)
    assert heavy.status is Status.PASS and heavy.metrics["samples"] == 16, heavy.summary
    broken = overfit(nn.Sequential(zoo.mlp(), nn.Softmax(dim=1)), batch_flops=1e3)
    assert broken.status is Status.FAIL and broken.metrics["pattern"] == Pattern.PLATEAU.value, broken.summary


def test_run_is_shared_between_callers():
    subject = build_subject(Path("<test>"), zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu")
    ctx = Context(subject)
    settings = OverfitSettings(max_steps=20)
    assert ctx.shared(small_batch_run, settings) is ctx.shared(small_batch_run, settings)


def test_regularization_off_reaches_attention_and_rnn_dropout():
    layer = nn.TransformerEncoderLayer(16, nhead=2, dropout=0.3, batch_first=True)
    rnn = nn.LSTM(8, 8, num_layers=2, dropout=0.3)
    without_regularization(nn.ModuleList([layer, rnn]))
    assert layer.self_attn.dropout == 0.0 and layer.dropout.p == 0.0
    assert rnn.dropout == 0.0


# --- token sequences: the goal a causal language model can reach ----------------------------

ZOO_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"


def test_causal_lm_on_zipf_tokens_passes_with_a_prefix_floor():
    """50 Zipf sequences share first tokens, so no causal model can reach loss 0: the goal's floor
    is the entropy of the next token given the prefix, and accuracy is asked of what is predictable."""
    from nndoctor.engine import run_path
    from nndoctor.options import RunOptions

    result = run_path(ZOO_DIR / "sound_causal_lm_zipf.py", options=RunOptions(only=("overfit_small_batch",), seed=0, device="cpu")).result("overfit_small_batch")
    assert result.status is Status.PASS, result.summary
    assert result.metrics["floor"] > 0.05
    assert result.metrics["floor"] < result.metrics["goal_loss"] < result.metrics["constant_baseline"]


def test_hf_gpt2_lm_given_labels_passes():
    """Hugging Face shifts labels = input_ids inside the model: scored unshifted, a sound GPT-2
    reached loss 0.013 and was judged a failure on accuracy."""
    transformers = pytest.importorskip("transformers")
    from torch.utils.data import Dataset

    class Items(Dataset):
        def __init__(self):
            self.ids = torch.randint(0, 40, (64, 10), generator=torch.Generator().manual_seed(0))

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.ids[i].clone()}

    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=40, n_positions=10))
    result = run_check("overfit_small_batch", model, Items())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["final_accuracy"] < 0.98  # the first tokens after a shared prefix cannot all be right
