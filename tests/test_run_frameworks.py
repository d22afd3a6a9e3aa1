"""`nndoctor run` on scripts that train through Lightning's Trainer.fit and Hugging Face's
Trainer.train, with the real libraries (tiny random-init models, CPU, a few steps)."""

from __future__ import annotations

from nndoctor import engine
from nndoctor.options import RunOptions
from nndoctor.result import Status
from tests.loop import SCRIPTS

LOOP_CHECKS = ["grad_reset", "optimizer_coverage", "train_mode", "lr_schedule", "loss_progress"]


def test_lightning_trainer_fit_is_observed_and_its_setup_captured():
    report = engine.run_script(SCRIPTS / "train_lightning.py", [], steps=24, options=RunOptions(only=tuple(LOOP_CHECKS + ["initial_loss"]), device="cpu"))
    statuses = {r.id: r.status for r in report.results}
    assert statuses == {**dict.fromkeys(LOOP_CHECKS, Status.PASS), "initial_loss": Status.PASS}, report.results
    assert any("Model: Classifier, 676 parameters" in n for n in report.notes)
    assert any("called at train_lightning.py:19" in n for n in report.notes)


def test_hugging_face_trainer_with_warmup_is_observed(tmp_path):
    # linear warm-up from 0 and linear decay: a sound schedule; the loss is computed inside the
    # model (labels passed in), so the checklist on the captured setup skips with its reason
    report = engine.run_script(SCRIPTS / "train_hf.py", [str(tmp_path)], steps=12, options=RunOptions(only=tuple(LOOP_CHECKS + ["initial_loss"]), device="cpu"))
    statuses = {r.id: r.status for r in report.results}
    for check_id in ("grad_reset", "optimizer_coverage", "train_mode", "lr_schedule"):
        assert statuses[check_id] is Status.PASS, report.result(check_id).summary
    assert statuses["initial_loss"] is Status.SKIP and "loss was not seen" in report.result("initial_loss").summary
    assert any("Batches taken: 12 (96 samples)" in n for n in report.notes)  # keyword inputs (input_ids=...) captured
