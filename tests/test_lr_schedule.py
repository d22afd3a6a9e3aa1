from nndoctor.result import Status
from tests.loop import run_loop_check


def test_constant_lr_passes():
    result = run_loop_check("lr_schedule", steps=30)
    assert result.status is Status.PASS, result.summary


def test_cosine_annealed_to_zero_at_the_planned_end_passes():
    # 3 epochs x 16 batches, T_max = 48 steps: the script ends as the LR reaches ~0
    result = run_loop_check("lr_schedule", "--cosine", "--epochs", "3", steps=100)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["Adam"]["last"] < 1e-4


def test_per_epoch_step_lr_stepped_per_batch_fails():
    result = run_loop_check("lr_schedule", "--step-lr-per-batch", steps=100)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("lr_schedule.collapsed",)


def test_cosine_with_t_max_in_epochs_stepped_per_batch_fails():
    result = run_loop_check("lr_schedule", "--cosine-in-epochs", steps=60)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("lr_schedule.past_end",)


def test_lambda_lr_returning_the_lr_fails():
    result = run_loop_check("lr_schedule", "--lambda-lr-twice", steps=20)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("lr_schedule.squared",)
