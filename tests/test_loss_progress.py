from nndoctor.result import Status
from tests.loop import SCRIPTS, run_loop_check


def test_sound_loop_passes():
    result = run_loop_check("loss_progress", steps=60)
    assert result.status is Status.PASS, result.summary


def test_loss_rebuilt_from_item_stalls_and_fails():
    result = run_loop_check("loss_progress", "--loss-from-item", steps=60)
    assert result.status is Status.FAIL, result.summary
    assert "loss_progress.no_gradient" in result.codes


def test_sgd_gradients_clipped_to_a_thousandth_fail():
    result = run_loop_check("loss_progress", "--sgd", "--clip", "1e-3", steps=60)
    assert result.status is Status.FAIL, result.summary
    assert "loss_progress.always_clipped" in result.codes


def test_sgd_with_usual_clipping_at_one_passes():
    result = run_loop_check("loss_progress", "--sgd", "--clip", "1.0", steps=60)
    assert result.status is Status.PASS, result.summary


def test_clipping_under_adam_is_not_judged():
    # Adam's step does not scale with the gradient's norm: clipping it changes little
    result = run_loop_check("loss_progress", "--clip", "1e-3", steps=60)
    assert result.status is Status.PASS, result.summary


def test_labels_shuffled_apart_from_their_features_stall_and_fail():
    result = run_loop_check("loss_progress", "--shuffle-labels", steps=100)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("loss_progress.stalled",)
    assert result.metrics["Adam"]["progress"] < 0.1


def test_gan_losses_are_not_required_to_fall_but_their_players_are_named():
    result = run_loop_check("loss_progress", script=SCRIPTS / "train_gan.py", steps=60)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["adversarial"] == ["Adam", "SGD"]
    assert "Sequential#1's output is fed to Sequential#2" in result.evidence


def test_loss_rebuilt_from_item_names_the_detached_loss_as_likely_cause():
    from nndoctor import engine
    from nndoctor.options import RunOptions

    report = engine.run_script(SCRIPTS / "train_mlp.py", ["--loss-from-item"], steps=30,
                               options=RunOptions(only=("loss_progress",), device="cpu"))
    assert report.causes and report.causes[0].key == "loss_detached", report.causes


def test_gan_whose_losses_blow_up_still_fails():
    # the discriminator's SGD at lr 10: the game diverges to NaN, which no game excuses
    result = run_loop_check("loss_progress", "--d-lr", "10", script=SCRIPTS / "train_gan.py", steps=60)
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("loss_progress.exploding",)
