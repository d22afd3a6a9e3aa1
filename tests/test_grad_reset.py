from nndoctor import api
from nndoctor.result import Status
from tests import zoo
from tests.loop import run_loop_check


def test_sound_loop_passes():
    result = run_loop_check("grad_reset")
    assert result.status is Status.PASS, result.summary
    assert result.metrics["unreset_steps"] == 0 and result.metrics["judged_steps"] == 59


def test_missing_zero_grad_fails():
    result = run_loop_check("grad_reset", "--no-zero-grad")
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("grad_reset.never_reset",)
    assert result.metrics["unreset_share"] == 1.0


def test_gradient_accumulation_passes():
    # four backward passes, one step, then a reset: accumulation on purpose
    result = run_loop_check("grad_reset", "--accumulate", "4", steps=20)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["backward_passes_per_step"] == [4]


def test_model_file_check_skips_and_points_to_run():
    result = api.check(zoo.mlp(), zoo.blobs(), only=["grad_reset"], device="cpu").result("grad_reset")
    assert result.status is Status.SKIP and "nndoctor run" in result.summary
