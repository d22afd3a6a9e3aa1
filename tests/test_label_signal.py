"""label_signal: labels shuffled apart from their inputs fail, a feature that is the label fails,
a perfect-looking feature found by chance is not reported; sound data (including a hard XOR rule
and a zero-information one-hot feature) passes."""

import math

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor.checks import label_signal
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_check

# Fewer samples and steps than the defaults, for speed.
FAST = {"samples": 240, "steps": 100}


def shuffled_blobs() -> TensorDataset:
    x, y = zoo.blobs().tensors
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    return TensorDataset(x[perm], y)


def test_features_shuffled_without_labels_fail():
    result = run_check("label_signal", zoo.mlp(), shuffled_blobs(), nn.CrossEntropyLoss(), thresholds=FAST)
    assert result.status is Status.FAIL, result.summary
    assert "label_signal.no_gain" in result.codes
    assert abs(result.metrics["gain_sigmas"]) < 2


def test_sound_blobs_pass_with_a_wide_margin():
    result = run_check("label_signal", zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), thresholds=FAST)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["gain_sigmas"] > 5


def test_a_run_that_cannot_fit_warns_without_the_permuted_runs():
    # an optimizer too slow to move the loss in the run's steps: nothing to judge, and no time spent
    # on three more runs that could not be judged either
    model = zoo.mlp()
    result = run_check("label_signal", model, zoo.blobs(), nn.CrossEntropyLoss(),
                       optimizer=torch.optim.SGD(model.parameters(), lr=1e-7), thresholds=FAST)
    assert result.status is Status.WARN, result.summary
    assert "label_signal.inconclusive" in result.codes
    assert "permuted_loss" not in result.metrics and result.metrics["fit_ratio"] > 0.9


def test_batch_norm_with_slow_running_statistics_is_judged_on_what_it_learned():
    # torchvision's MobileNets keep BatchNorm momentum at 0.01: after a short run the running
    # statistics are still near their initial values (variance 1, here against inputs of std 0.1),
    # and an eval-mode loss had barely moved: an inconclusive warning on a sound model. The runs
    # are scored as they train (batch statistics, dropout off).
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, momentum=0.01), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, momentum=0.01), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 16 * 16, 10),
    )
    images, labels = zoo.images(n=384).tensors
    result = run_check(
        "label_signal", model, TensorDataset(images * 0.1, labels), nn.CrossEntropyLoss(),
        thresholds={"samples": 240, "steps": 30, "min_steps": 30},
    )
    assert result.status is Status.PASS, result.summary
    assert model[1].running_mean.abs().sum() == 0  # the user's model untouched


def test_hard_but_real_function_passes():
    x = torch.randn(512, 20, generator=torch.Generator().manual_seed(0))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    result = run_check("label_signal", zoo.mlp(classes=2), TensorDataset(x, y), nn.CrossEntropyLoss(), thresholds=FAST)
    assert result.status is not Status.FAIL, result.summary  # a weak gain may warn, never fail
    assert result.metrics["gain"] > 0.05 * result.metrics["permuted_loss"]
    assert result.metrics["leaks"] == 0


def test_regression_passes():
    result = run_check("label_signal", nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1)),
                       zoo.regression(), nn.MSELoss(), thresholds=FAST)
    assert result.status is Status.PASS, result.summary


def test_feature_equal_to_the_label_fails():
    x, y = zoo.blobs().tensors
    x = x.clone()
    x[:, 7] = y.float()
    result = run_check("label_signal", zoo.mlp(), TensorDataset(x, y), nn.CrossEntropyLoss(), thresholds=FAST)
    assert result.status is Status.FAIL
    assert "label_signal.label_in_input" in result.codes
    assert any("[:, 7]" in line for line in result.evidence)


# --- the leak scan alone (no training): chance, one-hot and monotone cases -------------------


class Scan:
    """The slice of a Context the leak scan reads."""

    def __init__(self, inputs, targets, task):
        self._batch = (inputs, targets)
        self.subject = type("S", (), {"task": task, "loss_fn": nn.CrossEntropyLoss()})()

    def scan(self):
        return self._batch


def test_monotone_transform_of_the_label_is_a_leak_not_identity():
    y = torch.arange(400) % 4
    x = torch.randn(400, 10)
    x[:, 3] = torch.exp(y.float()) + 0.01 * torch.rand(400)  # a different value per class: blocks
    leaks = label_signal.find_leaks(Scan(x, y, "classification"), 1e-6)
    assert [(leak.feature, leak.identical) for leak in leaks] == [("input[:, 3]", False)]


def test_no_leak_by_chance_on_small_imbalanced_samples_or_one_hot_features():
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        y = (torch.rand(64, generator=generator) < 0.05).long()  # one to five positives
        one_hot = nn.functional.one_hot(torch.randint(0, 30, (64,), generator=generator), 30).float()
        x = torch.cat([torch.randn(64, 200, generator=generator), one_hot], dim=1)
        assert label_signal.find_leaks(Scan(x, y, "binary"), 1e-6) == []


def test_single_feature_input_is_never_a_leak():
    x = torch.linspace(-2, 2, 300).unsqueeze(1)
    assert label_signal.find_leaks(Scan(x, 3 * x[:, 0], "regression"), 1e-6) == []


def test_chance_bound_is_the_exact_permutation_probability():
    # 2 classes of 3 in 6 samples: 2 of the 20 label sequences are two blocks.
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    assert math.isclose(label_signal._log_chance(labels, "class"), math.log(2 / 20))


# --- the verdict on measured figures (from the zoo runs) --------------------------------------

THRESHOLDS = {"pass_sigmas": 3.0, "fail_sigmas": 2.0, "max_fail_gain": 0.05, "min_fit": 0.1}


def signal(real, permuted, noise, fit_ratio, fit_sigmas):
    return label_signal.Signal(150, 256, 128, real, permuted, noise, fit_ratio, fit_sigmas)


def test_verdicts_on_measured_figures():
    judge = lambda s: label_signal.judge(s, [], THRESHOLDS)
    # features shuffled without labels: no held-out gain, no faster fit
    assert judge(signal(1.462, (1.458, 1.466, 1.49), 0.0453, 0.78, 0.5)).status is Status.FAIL
    # imbalanced binary with pos_weight: a 40% gain only 2.2 noise levels, but fitted far faster
    assert judge(signal(0.858, (1.3, 1.5, 1.463), 0.259, 0.6, 7.9)).status is Status.PASS
    # a run that barely trained tells nothing: a warning, and the permuted runs are not made
    unfitted = judge(label_signal.Unfitted(30, 134, 0.99))
    assert (unfitted.status, unfitted.codes) == (Status.WARN, ("inconclusive",))
    assert "not made" in unfitted.evidence[0] and unfitted.metrics["fit_ratio"] == 0.99
    # a real but small gain inside the noise band warns, never fails
    assert judge(signal(0.72, (0.84, 0.80, 0.87), 0.145, 0.6, 1.0)).codes == ("weak_signal",)



def test_likely_causes_follow_the_codes():
    from nndoctor.diagnosis import rank
    from nndoctor.result import CheckResult

    def result(status, *codes):
        return CheckResult(id="label_signal", title="t", section="s", status=status, summary="", codes=codes)

    assert rank((result(Status.FAIL, "label_signal.no_gain"),))[0].key == "labels_detached_from_inputs"
    assert rank((result(Status.FAIL, "label_signal.label_in_input"),))[0].key == "label_leak"
    assert rank((result(Status.WARN, "label_signal.leak"),)) == ()  # a warning alone names no cause ...
    failed = CheckResult(id="overfit_small_batch", title="t", section="s", status=Status.FAIL, summary="",
                         codes=("overfit_small_batch.plateau",))
    assert rank((result(Status.WARN, "label_signal.leak"), failed))[0].key == "label_leak"  # ... beside a failure it does
    assert all(c.key not in ("label_leak", "labels_detached_from_inputs")
               for c in rank((result(Status.WARN, "label_signal.weak_signal"), failed)))
