"""Likely causes: the ranking logic on fabricated results, and the seeds' scenarios end to end."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from nndoctor import api
from nndoctor import catalog
from nndoctor.diagnosis import RULES, rank
from nndoctor.result import CheckResult, Status
from tests import zoo


def _result(check_id, status, *codes):
    """A result carrying finding codes (short keys): the diagnosis reads codes, never summaries."""
    return CheckResult(id=check_id, title=check_id, section="s", status=status, summary="(summaries are not read)",
                       codes=tuple(f"{check_id}.{code}" for code in codes))


def test_softmax_before_ce_outranks_the_symptoms_it_causes():
    results = (
        _result("output_head", Status.FAIL, "probabilities_to_ce"),
        _result("overfit_small_batch", Status.FAIL, "plateau"),
        _result("easy_data", Status.FAIL),
        _result("update_ratio", Status.WARN, "too_small"),
    )
    causes = rank(results)
    assert causes[0].key == "softmax_before_ce"
    assert set(causes[0].checks) >= {"output_head", "overfit_small_batch", "easy_data"}


def test_data_or_labels_needs_easy_data_to_pass():
    failing_overfit = _result("overfit_small_batch", Status.FAIL, "plateau")
    assert rank((failing_overfit, _result("easy_data", Status.PASS)))[0].key == "data_or_labels"
    assert all(c.key != "data_or_labels" for c in rank((failing_overfit, _result("easy_data", Status.FAIL))))


def test_no_problem_no_cause():
    assert rank((_result("initial_loss", Status.PASS), _result("overfit_small_batch", Status.PASS))) == ()


def test_warnings_rank_below_failures():
    results = (_result("input_normalization", Status.WARN), _result("regularization_ratio", Status.FAIL))
    assert [c.key for c in rank(results)] == ["strong_regularization", "unnormalized_inputs"]


def test_lr_range_finding_no_working_rate_is_not_a_low_learning_rate():
    """lr_range's warning that no rate lowered the loss says the rate is *not* the cause; a summary
    regex once read its "lowered" as "low" and ranked lr_too_low first."""
    causes = rank((_result("lr_range", Status.WARN, "no_working_rate"), _result("overfit_small_batch", Status.FAIL, "plateau")))
    assert "lr_too_low" not in [c.key for c in causes]
    stuck = _result("overfit_small_batch", Status.FAIL, "plateau")
    assert [c.key for c in rank((_result("lr_range", Status.WARN, "too_low"), stuck))][0] == "lr_too_low"


def test_warnings_alone_name_no_cause():
    """Nothing failed, so there is no failure to explain: each warning carries its own fix."""
    assert rank((_result("lr_range", Status.WARN, "too_low"), _result("weight_init", Status.WARN, "scale_too_small"))) == ()


def test_a_loss_that_rewards_errors_outranks_the_learning_rate_sweep_it_misleads():
    """A flipped loss sign makes the sweep's steepest descent lie at huge rates: lr_range then says
    the rate is far too low, which the sign error explains."""
    results = (
        _result("overfit_small_batch", Status.FAIL, "rising"), _result("easy_data", Status.FAIL, "rising"),
        _result("initial_loss", Status.FAIL, "negative_cross_entropy"), _result("lr_range", Status.WARN, "too_low"),
    )
    assert [c.key for c in rank(results)][:2] == ["loss_rewards_errors", "lr_too_low"]


def test_every_code_a_rule_cites_is_declared_in_the_catalog():
    declared = catalog.all_codes()
    cited = {code for rule in RULES for clue in (*rule.primary, *rule.support) for code in clue.codes}
    assert cited and cited <= set(declared), sorted(cited - set(declared))
    checks = {clue.check for rule in RULES for clue in (*rule.primary, *rule.support)}
    assert checks <= set(catalog.catalog_ids())


def test_rules_read_codes_not_summaries():
    """The same result with another summary ranks the same; without the code it ranks nothing."""
    coded = CheckResult(id="output_head", title="t", section="s", status=Status.FAIL, summary="anything at all",
                        codes=("output_head.probabilities_to_ce",))
    worded = CheckResult(id="output_head", title="t", section="s", status=Status.FAIL,
                         summary="probabilities fed to CrossEntropyLoss")
    assert [c.key for c in rank((coded,))] == ["softmax_before_ce"]
    assert [c.key for c in rank((worded,))] == []


# --- the seeds' scenarios, on real models ---------------------------------------------------------

def _top(model, dataset, loss_fn, optimizer=None, task=None):
    report = api.check(model, dataset, loss_fn=loss_fn, optimizer=optimizer, task=task, device="cpu",
                       skip=["lr_range"])
    return [c.key for c in report.causes], report


class SoftmaxNet(nn.Module):
    """Seed 000: a deep LeakyReLU net, orthogonal init, softmax output, cross-entropy."""

    def __init__(self, depth=30, width=32, classes=4):
        super().__init__()
        layers = [nn.Linear(20, width), nn.LeakyReLU(1 / 3)]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.LeakyReLU(1 / 3)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)

    def forward(self, x):
        return F.softmax(self.out(self.body(x)), dim=1)


def test_seed_000_deep_softmax_net():
    keys, _ = _top(SoftmaxNet(), zoo.blobs(n=256), nn.CrossEntropyLoss())
    assert keys[0] == "softmax_before_ce", keys


def keras_categorical_crossentropy(probabilities, target):
    """Seed 001: Keras-style categorical cross-entropy on softmax probabilities, written by hand."""
    return -(F.one_hot(target, probabilities.shape[1]) * torch.log(probabilities)).sum(1).mean()


def test_seed_001_softmax_with_hand_written_crossentropy():
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    keys, _ = _top(model, zoo.blobs(n=256), keras_categorical_crossentropy)
    assert keys[0] == "softmax_before_ce", keys


def test_seed_003_zero_initialized_network():
    model = nn.Sequential(nn.Linear(20, 32), nn.LeakyReLU(0.01), nn.Linear(32, 4))
    for p in model.parameters():
        nn.init.zeros_(p)
    keys, _ = _top(model, zoo.blobs(n=256), nn.CrossEntropyLoss())
    assert keys[0] == "bad_init", keys


def test_seed_003_relu_on_the_last_layer():
    model = nn.Sequential(zoo.mlp(), nn.ReLU())
    keys, _ = _top(model, zoo.blobs(n=256), nn.CrossEntropyLoss())
    assert keys[0] == "squashed_logits", keys


def test_seed_004_tanh_bounded_regression():
    data = zoo.regression(n=256)
    scaled = TensorDataset(data.tensors[0], data.tensors[1] * 4)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1), nn.Tanh())
    keys, _ = _top(model, scaled, nn.MSELoss())
    assert keys[0] == "bounded_regression", keys


def test_seed_004_l2_strength_one_on_a_sigmoid_net():
    model = nn.Sequential(nn.Linear(20, 25), nn.Sigmoid(), nn.Linear(25, 4))
    keys, _ = _top(model, zoo.blobs(n=256), nn.CrossEntropyLoss(),
                   optimizer=lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=1.0))
    assert keys[0] == "strong_regularization", keys


def test_learning_rate_far_too_high_for_plain_sgd():
    keys, _ = _top(zoo.mlp(), zoo.blobs(n=256), nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=200.0))
    assert "lr_too_high" in keys[:2], keys


def test_sound_model_has_no_likely_cause():
    keys, report = _top(zoo.mlp(), zoo.blobs(n=256), nn.CrossEntropyLoss())
    assert report.passed and keys == [], keys


def test_try_fixes_reports_which_fix_works():
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    report = api.check(model, zoo.blobs(n=256), loss_fn=nn.CrossEntropyLoss(), device="cpu",
                       only=["output_head", "overfit_small_batch"], try_fixes=True)
    top = report.causes[0]
    assert top.key == "softmax_before_ce"
    assert top.tried_fix and "removing the final activation" in top.tried_fix


def test_a_failed_upstream_cause_ranks_ahead_of_the_symptoms_it_explains():
    # Raw pixels: saturation and the initial loss trip more checks than input_normalization alone.
    results = (
        _result("input_normalization", Status.FAIL, "off_centre"),
        _result("saturation", Status.FAIL),
        _result("gradient_flow", Status.WARN),
        _result("activation_variance", Status.FAIL),
        _result("initial_loss", Status.FAIL, "far_above_chance"),
        _result("weight_init", Status.WARN),
    )
    keys = [c.key for c in rank(results)]
    assert keys.index("unnormalized_inputs") < keys.index("saturated_activations")
    assert keys.index("unnormalized_inputs") < keys.index("bad_init")


def test_a_warning_does_not_reorder_failures():
    results = (_result("input_normalization", Status.WARN), _result("saturation", Status.FAIL), _result("gradient_flow", Status.FAIL))
    assert [c.key for c in rank(results)][0] == "saturated_activations"


def test_dead_relus_explain_missing_gradients_through_the_input():
    results = (
        _result("dead_relu", Status.FAIL),
        _result("gradient_flow", Status.FAIL, "gradient_cut_off"),
        _result("update_ratio", Status.FAIL),
        _result("input_dependence", Status.FAIL),
        _result("overfit_small_batch", Status.FAIL, "plateau"),
        _result("easy_data", Status.FAIL),
    )
    assert [c.key for c in rank(results)][:3] == ["dead_relus", "input_ignored", "broken_gradient_path"]


def test_the_explains_relation_is_acyclic_and_names_real_causes():
    from nndoctor.diagnosis import EXPLAINS, MECHANISMS, RULES, _explains

    keys = {rule.key for rule in RULES}
    assert set(EXPLAINS) <= keys and {k for ks in EXPLAINS.values() for k in ks} <= keys
    assert not any(_explains(EXPLAINS, key, key) for key in EXPLAINS)
    assert all(downstream in EXPLAINS[upstream] for upstream, downstream in MECHANISMS)


def test_exploding_gradients_explain_an_initial_loss_far_off_unless_the_weights_look_wrong():
    symptoms = (
        _result("initial_loss", Status.FAIL, "far_above_chance"),
        _result("activation_variance", Status.FAIL, "exploding"),
        _result("gradient_flow", Status.FAIL, "exploding_everywhere"),
    )
    assert [c.key for c in rank(symptoms)][0] == "exploding_gradients"
    assert [c.key for c in rank((*symptoms, _result("weight_init", Status.FAIL)))][0] == "bad_init"


def test_a_nan_from_log_of_zero_outranks_oversized_weights_behind_it():
    results = (_result("numerics", Status.FAIL), _result("weight_init", Status.FAIL), _result("initial_loss", Status.FAIL, "far_above_chance"))
    assert [c.key for c in rank(results)][:2] == ["numerics", "bad_init"]


def test_sequence_causes_follow_their_codes():
    position = _result("batch_independence", Status.FAIL, "batch_position")
    assert [c.key for c in rank((position,))] == ["batch_position"]  # not batch_mixing: no sample reads another
    assert [c.key for c in rank((_result("batch_independence", Status.FAIL, "samples_mix"),))] == ["batch_mixing"]
    assert rank((_result("causal_dependence", Status.FAIL, "sees_future"),))[0].key == "future_leak"
    eos = _result("class_balance", Status.WARN, "eos_label_ignored")
    assert rank((eos, _result("overfit_small_batch", Status.FAIL, "plateau")))[0].key == "labels_masked"
    imbalance = _result("class_balance", Status.FAIL, "imbalanced")
    assert all(c.key != "labels_masked" for c in rank((imbalance,)))


def test_a_passing_check_a_rule_asks_for_supports_it():
    # label_signal failing while the model fits its batch (overfit_small_batch passes): the labels are at fault
    no_gain = CheckResult(id="label_signal", title="t", section="s", status=Status.FAIL, summary="",
                          codes=("label_signal.no_gain",))
    fits = CheckResult(id="overfit_small_batch", title="t", section="s", status=Status.PASS, summary="")
    causes = rank((no_gain, fits))
    assert causes[0].key == "labels_detached_from_inputs"
    assert "overfit_small_batch" in causes[0].checks
