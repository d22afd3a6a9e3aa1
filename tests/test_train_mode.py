from nndoctor.result import Status
from tests.loop import run_loop_check


def test_sound_loop_passes():
    result = run_loop_check("train_mode", steps=20)
    assert result.status is Status.PASS, result.summary


def test_model_left_in_eval_mode_fails():
    result = run_loop_check("train_mode", "--eval-mode", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("train_mode.eval_mode",)
    assert result.metrics["eval_in_training"] == ["Sequential.1", "Sequential.3"]


def test_dropout_written_as_keep_probability_fails():
    result = run_loop_check("train_mode", "--dropout", "0.9", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("train_mode.high_dropout",)


def test_frozen_backbone_batch_norm_in_eval_passes():
    result = run_loop_check("train_mode", "--freeze-backbone", steps=20)
    assert result.status is Status.PASS, result.summary
    assert "1 in frozen parts" in result.summary
