from pathlib import Path

from nndoctor.result import Status
from tests.loop import run_loop_check


def test_sound_loop_passes():
    result = run_loop_check("optimizer_coverage", steps=20)
    assert result.status is Status.PASS, result.summary


def test_model_rebuilt_after_the_optimizer_fails():
    result = run_loop_check("optimizer_coverage", "--rebuild-model", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert "optimizer_coverage.stale_optimizer" in result.codes
    assert result.metrics["stale"] == {"Adam": 8}


def test_intentionally_frozen_backbone_passes():
    result = run_loop_check("optimizer_coverage", "--freeze-backbone", steps=20)
    assert result.status is Status.PASS, result.summary


def test_name_filter_that_also_froze_the_classifier_fails():
    result = run_loop_check("optimizer_coverage", "--freeze-by-name", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("optimizer_coverage.frozen_output",)
    assert result.metrics["frozen_output"] == ["Sequential.6"]


CORPUS = Path(__file__).resolve().parent.parent / "benchmarks" / "scripts"


def test_classifier_frozen_with_only_a_root_parameter_training_fails():
    # every child module frozen by a name test; only the model's bare logit scale trains
    result = run_loop_check("optimizer_coverage", script=CORPUS / "broken_frozen_by_name_filter.py", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("optimizer_coverage.frozen_output",)
    assert result.metrics["frozen_output"] == ["Classifier.head"]


def test_frozen_backbone_with_trainable_head_in_eval_mode_passes():
    result = run_loop_check("optimizer_coverage", script=CORPUS / "sound_frozen_backbone_bn_eval.py", steps=20)
    assert result.status is Status.PASS, result.summary
