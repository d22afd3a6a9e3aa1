"""`nndoctor run`: the script runs as `python train.py ARGS` would, is stopped cleanly, leaves no
trace in the interpreter, and bad input is one paragraph with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nndoctor.errors import InputError
from nndoctor.options import RunOptions
from nndoctor.observer import observe
from tests.loop import MLP, SCRIPTS

ROOT = Path(__file__).resolve().parents[1]

LOOP = """
import sys
import torch
from torch import nn
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
{before}
for step in range({steps}):
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    {after}
"""


def script(tmp_path: Path, before: str = "", steps: int = 30, after: str = "pass", name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(LOOP.format(before=before, steps=steps, after=after))
    return path


def test_runs_as_main_with_argv_and_restores_the_interpreter(tmp_path):
    marker = tmp_path / "seen.txt"
    path = script(tmp_path, before=f"assert __name__ == '__main__'\nopen({str(marker)!r}, 'w').write(repr(sys.argv))\n"
                  "import helper_beside_script")
    (tmp_path / "helper_beside_script.py").write_text("VALUE = 1\n")
    argv, syspath, cwd = sys.argv[:], sys.path[:], Path.cwd()
    observation = observe(path, ["--lr", "3"], steps=5)
    assert marker.read_text() == repr([str(path), "--lr", "3"])
    assert sys.argv == argv and sys.path == syspath and Path.cwd() == cwd
    assert "helper_beside_script" not in sys.modules
    assert not (tmp_path / "__pycache__").exists()  # no bytecode written beside the script
    assert observation.trace.stop_reason == "steps" and len(observation.trace.steps) == 5


def test_stops_after_steps_and_the_scripts_finally_blocks_run(tmp_path):
    marker = tmp_path / "finally.txt"
    path = tmp_path / "train.py"
    path.write_text(LOOP.format(before="try:", steps=1000, after="pass").replace("\nfor step", "\n  for step")
                    .replace("\n    ", "\n      ") + f"finally:\n    open({str(marker)!r}, 'w').write('ran')\n")
    observation = observe(path, [], steps=7)
    assert len(observation.trace.steps) == 7 and marker.read_text() == "ran"


def test_functional_loss_is_found_with_its_line(tmp_path):
    observation = observe(script(tmp_path), [], steps=3)
    (loss,) = observation.trace.losses
    assert (loss.name, loss.kind) == ("cross_entropy", "function")
    assert loss.line == "train.py:10: loss = nn.functional.cross_entropy(model(x), y)"


def test_script_missing_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        observe(tmp_path / "nope.py", [])


def test_zero_steps_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="--steps must be at least 1"):
        observe(script(tmp_path), [], steps=0)


def test_error_before_the_first_step_shows_the_scripts_error_and_line(tmp_path):
    path = script(tmp_path, before="raise ValueError('no data found')")
    with pytest.raises(InputError, match=r"raised before its first optimizer step: ValueError: no data found\. At train\.py line 8"):
        observe(path, [])


def test_script_without_optimizer_step_is_bad_input(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("import torch\nprint(torch.ones(2))\n")
    with pytest.raises(InputError, match="ended without any optimizer step"):
        observe(path, [])


def test_error_after_some_steps_is_reported_with_what_was_observed(tmp_path):
    path = script(tmp_path, after="if step == 4: raise RuntimeError('disk full')")
    trace = observe(path, [], steps=50).trace
    assert trace.stop_reason == "error" and len(trace.steps) == 5
    assert "RuntimeError: disk full" in trace.error


def test_script_that_ends_before_the_limit_is_finished(tmp_path):
    trace = observe(script(tmp_path, steps=12), [], steps=100).trace
    assert trace.stop_reason == "finished" and len(trace.steps) == 12


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nndoctor", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_json_on_stdout_stays_valid_while_the_script_prints():
    process = cli(str(MLP), "--steps", "20", "--quick", "--json", "-", "--", "--no-zero-grad")
    assert process.returncode == 1, process.stderr[-2000:]
    report = json.loads(process.stdout)
    results = {r["id"]: r for r in report["checks"]} if isinstance(report.get("checks"), list) else None
    assert results is not None and results["grad_reset"]["status"] == "fail"
    assert "epoch 0 loss" in process.stderr  # the script's own output, kept apart


def test_cli_bad_input_is_exit_2_without_traceback(tmp_path):
    process = cli(str(tmp_path / "missing.py"))
    assert process.returncode == 2
    assert "does not exist" in " ".join(process.stderr.split()) and "Traceback" not in process.stderr


def test_numerics_names_where_the_users_own_run_first_went_nan():
    from nndoctor import engine

    report = engine.run_script(MLP, ["--log-of-probabilities"], steps=4, options=RunOptions(only=tuple(["numerics"]), device="cpu"))
    result = report.result("numerics")
    assert result.status.value == "fail"
    assert result.metrics["first_phase"] == "your own training run" and result.metrics["first_step"] == 1
    assert result.metrics["first_where"] == "Sequential.0"  # the weights went NaN at step 1: the first layer shows it


def test_multi_worker_loader_and_bf16_autocast_are_observed():
    trace = observe(MLP, ["--workers", "2", "--bf16"], steps=20).trace
    assert len(trace.steps) == 20 and trace.stop_reason == "steps"
    assert all(s.grads_reset for s in trace.steps[1:]) and trace.losses[0].name == "CrossEntropyLoss"


def test_interrupt_reports_what_was_observed(tmp_path):
    trace = observe(script(tmp_path, after="if step == 5: raise KeyboardInterrupt"), [], steps=50).trace
    assert trace.stop_reason == "interrupted" and len(trace.steps) == 6


def test_several_models_are_listed_and_one_is_picked_with_model():
    from nndoctor import engine

    gan = SCRIPTS / "train_gan.py"
    report = engine.run_script(gan, [], steps=20, options=RunOptions(only=("grad_reset", "initial_loss"), device="cpu"))
    assert any("Several models were trained; the checklist examined Sequential#1" in n for n in report.notes)
    assert report.result("grad_reset").status.value == "pass"
    with pytest.raises(InputError, match="--model Critic: the script trained Sequential#1, Sequential#2"):
        engine.run_script(gan, [], steps=4, model="Critic", options=RunOptions(device="cpu"))
    picked = engine.run_script(gan, [], steps=4, model="Sequential#2", options=RunOptions(only=tuple(["initial_loss"]), device="cpu"))
    assert any("Model (examined): Sequential#2" in n for n in picked.notes)


def test_torch_compile_is_observed_without_recompiling_for_the_hooks():
    trace = observe(MLP, ["--compile"], steps=12).trace
    assert len(trace.steps) == 12 and all(s.grads_reset for s in trace.steps[1:])
    assert {m.kind for m in trace.modes} == {"batchnorm", "dropout"} and all(m.eval_steps == 0 for m in trace.modes)


def test_time_budget_stops_the_script_at_the_next_step(tmp_path):
    trace = observe(script(tmp_path, steps=1000), [], steps=1000, time_budget=0.0).trace
    assert trace.stop_reason == "time_budget" and len(trace.steps) == 1


def test_run_watch_passes_a_sound_job_and_stops_a_broken_one_before_the_damage(tmp_path):
    script = SCRIPTS / "train_watch.py"
    sound = cli("--watch", str(script))
    assert sound.returncode == 0, sound.stderr
    assert "PASSED" in sound.stderr and "step 0 loss" in sound.stderr  # the script's own output, on stderr
    events, weights = tmp_path / "events.jsonl", tmp_path / "last_good.pt"
    broken = cli(
        "--watch", str(script), "--stop-on", "fail", "--events", str(events), "--save-last-good", str(weights),
        "--json", "-", "--", "--corrupt-from", "50",
    )
    assert broken.returncode == 1, broken.stderr
    document = json.loads(broken.stdout)
    assert document["verdict"] == "FAILED"
    assert "numerics" in {c["id"] for c in document["checks"] if c["status"] == "fail"}
    first = json.loads(events.read_text().splitlines()[0])
    assert first["step"] >= 50
    saved = torch.load(weights)
    assert all(torch.isfinite(value).all() for value in saved.values())


def test_watch_options_need_watch():
    result = cli(str(SCRIPTS / "train_watch.py"), "--stop-on", "fail")
    assert result.returncode == 2 and "--watch" in result.stderr
