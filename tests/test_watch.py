"""nndoctor.watch on real training loops (benchmarks/watch/watch_cases.py): the source threads'
mid-run failures caught within a few steps of their onset with the right likely cause, sound runs
with the traps that look like faults left alone, and the actions (events file, alerts, stop before
the bad update, last good weights, report with a Timeline)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import nndoctor
from nndoctor.errors import InputError
from nndoctor.report import plots
from nndoctor.result import Status
from nndoctor.watching import WatchStopped

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "watch"))
import watch_cases as cases  # noqa: E402


def _codes(run) -> set[str]:
    return {e.code for e in run.watcher.events}


def _delay(run) -> int:
    return min(e.step for e in run.watcher.events) - run.onset


def test_collapse_with_probabilities_pinned_at_1_is_caught_with_its_chain_and_cause():
    run = cases.collapse_pinned()
    assert 0 <= _delay(run) <= 10
    assert {"pinned_probabilities.wrong_class", "prediction_collapse.one_class", "gradient_flow.vanishing",
            "loss_progress.spike"} <= _codes(run)
    assert all(e.step >= run.onset for e in run.watcher.events)  # nothing before the fault
    assert run.watcher.report().causes[0].key == "softmax_before_ce"


def test_accuracy_falling_to_chance_is_caught():
    run = cases.accuracy_to_chance()
    assert 0 <= _delay(run) <= 10
    assert "prediction_collapse.one_class" in _codes(run)
    assert all(e.step >= run.onset for e in run.watcher.events)


def test_warmup_past_the_divergence_point_is_caught_as_a_learning_rate_too_high():
    run = cases.warmup_too_high()
    assert 0 <= _delay(run) <= 20
    assert {"lr_schedule.loss_rose", "loss_progress.diverged", "gradient_flow.exploding"} <= _codes(run)
    report = run.watcher.report()
    assert report.causes[0].key == "lr_too_high"
    assert report.timeline.lr_changes.rows  # the warm-up, with the loss before and after


def test_nan_from_the_log_of_a_probability_of_0_is_caught_at_its_step():
    run = cases.log_of_zero()
    first = run.watcher.events[0]
    assert first.step - run.onset <= 2
    nonfinite = next(e for e in run.watcher.events if e.code == "numerics.nonfinite_loss")
    assert "arises in the loss itself" in nonfinite.summary
    assert "pinned_probabilities.wrong_class" in _codes(run)
    assert run.watcher.report().causes[0].key == "softmax_before_ce"


@pytest.mark.parametrize("case", cases.SOUND, ids=lambda c: c.__name__)
def test_sound_runs_raise_no_event(case):
    run = case()
    assert run.watcher.events == (), [e.line() for e in run.watcher.events]
    assert run.watcher.report().status is Status.PASS


def test_stop_on_fail_stops_before_the_bad_update_and_keeps_the_last_good_weights(tmp_path):
    path = tmp_path / "last_good.pt"
    run = cases.log_of_zero(stop_on="fail", save_last_good=path)
    assert run.watcher.stopped is not None and run.watcher.stopped.code == "numerics.nonfinite_loss"
    assert run.steps == run.watcher.stopped.step  # the step whose loss was inf was never applied
    assert all(torch.isfinite(p).all() for p in run.watcher.model.parameters())
    state = torch.load(path)
    assert all(torch.isfinite(v).all() for v in state.values())
    report = run.watcher.report()
    assert "Stopped" in report.to_markdown() and any("last good" in n for n in report.notes)


def test_events_file_and_one_alert_line_per_new_problem(tmp_path):
    stream = io.StringIO()
    events = tmp_path / "events.jsonl"
    run = cases.collapse_pinned(events=events, alerts=True, stream=stream)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [line["code"] for line in lines] == [e.code for e in run.watcher.events]
    assert {"step", "check", "code", "status", "summary", "module"} <= set(lines[0])
    alerts = stream.getvalue().splitlines()
    assert len(alerts) == len(lines) and all(a.startswith("nndoctor watch: step ") for a in alerts)


def test_report_has_a_timeline_with_the_loss_plot(tmp_path):
    run = cases.collapse_pinned()
    report = plots.write(run.watcher.report(), tmp_path)
    assert (tmp_path / "timeline.png").is_file()
    markdown = plots.relative_to(report, tmp_path).to_markdown()
    assert "## Timeline" in markdown and "(timeline.png)" in markdown and "pinned_probabilities.wrong_class" in markdown
    timeline = json.loads(report.to_json())["timeline"]
    assert [e["code"] for e in timeline["events"]] == [e.code for e in run.watcher.events]
    result = report.result("prediction_collapse")
    assert result.status is Status.FAIL and result.codes == ("prediction_collapse.one_class",)


def test_large_equal_logits_before_a_softmax_are_flagged():
    """Seeds 001/003's signature on a real model: the rows of the last layer alike and large, so
    every class gets the same large signal; the softmax's input is what is judged."""
    torch.manual_seed(0)
    head = nn.Linear(16, 4)
    with torch.no_grad():
        head.weight.copy_(torch.full((4, 16), 5.0) + 0.001 * torch.randn(4, 16))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), head, nn.Softmax(dim=1))
    with torch.no_grad():
        model[0].bias.fill_(1.0)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x, y = torch.randn(64, 8), torch.arange(64) % 4
    with nndoctor.watch(model, opt, alerts=False, sample_every=1) as w:
        for _ in range(3):
            loss = -torch.log(model(x).gather(1, y[:, None]).clamp_min(1e-7)).mean()
            opt.zero_grad()
            loss.backward()
            w.step(loss, y)
            opt.step()
    assert "logit_scale.large_equal" in {e.code for e in w.events}
    assert w.report().causes[0].key == "large_equal_logits"


def test_hooks_are_removed_and_the_loop_is_left_as_it_was():
    model, opt = nn.Linear(4, 2), None
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rng = torch.random.get_rng_state()
    with nndoctor.watch(model, opt, alerts=False) as w:
        loss = model(torch.ones(3, 4)).sum()
        loss.backward()
        w.step(loss)
        opt.step()
    assert not model._forward_hooks and not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    assert torch.equal(rng, torch.random.get_rng_state())
    assert w.step_index == 1


def test_validation_passes_under_no_grad_are_not_judged_as_training_outputs():
    """A collapsed-looking validation output (every row class 0, sure of it) must not count."""
    model = nn.Sequential(nn.Linear(4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 4), torch.arange(64) % 3
    with nndoctor.watch(model, opt, alerts=False, sample_every=1, thresholds={"prediction_collapse": {"window": 64}}) as w:
        for _ in range(5):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            with torch.no_grad():
                model(torch.full((64, 4), 100.0) * model[0].weight[0].sign())  # validation: one class, sure
            w.step(loss, y)
            opt.step()
    assert w.events == ()
    with nndoctor.watch(model, opt, alerts=False, sample_every=1, thresholds={"prediction_collapse": {"window": 64}}) as w:
        for _ in range(5):
            loss = nn.functional.cross_entropy(model(torch.full((64, 4), 100.0) * model[0].weight[0].sign()), y)
            opt.zero_grad()
            loss.backward()
            w.step(loss, y)
            opt.step()
    assert "prediction_collapse.one_class" in {e.code for e in w.events}  # the same output in training counts


def test_a_loss_that_goes_negative_raises_no_event():
    """A Gaussian negative log-likelihood falls below 0 as the predicted variance shrinks: ratios
    of such losses mean nothing, so no spike or divergence is read from them."""
    torch.manual_seed(0)
    x = torch.randn(512, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.01 * torch.randn(512)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.GaussianNLLLoss()
    with nndoctor.watch(model, opt, alerts=False) as w:
        for step in range(400):
            idx = torch.randint(0, 512, (32,))
            out = model(x[idx])
            loss = loss_fn(out[:, 0], y[idx], nn.functional.softplus(out[:, 1]) + 1e-6)
            opt.zero_grad()
            loss.backward()
            w.step(loss)
            opt.step()
    assert min(v for _, v in w.judge.losses) < -1  # it did go negative
    assert w.events == (), [e.line() for e in w.events]


def test_stop_outside_a_with_block_raises_watch_stopped():
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = nndoctor.watch(model, opt, alerts=False, stop_on="fail")
    with pytest.raises(WatchStopped):
        w.step(torch.tensor(float("nan")))
    w.close()


def test_threshold_overrides_are_validated():
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InputError, match="unknown event id"):
        nndoctor.watch(model, opt, thresholds={"nope": {}})
    with pytest.raises(InputError, match="has no threshold"):
        nndoctor.watch(model, opt, thresholds={"loss_progress": {"nope": 1}})
    w = nndoctor.watch(model, opt, thresholds={"loss_progress": {"spike_ratio": 100}})
    assert w.settings.of("loss_progress")["spike_ratio"] == 100
    w.close()


def test_global_attach_finds_the_model_optimizer_and_loss_a_script_creates():
    """What `nndoctor run --watch train.py` relies on: no reference to the model or optimizer."""
    from torch.nn.modules.module import _global_forward_hooks
    from torch.optim.optimizer import _global_optimizer_pre_hooks

    from nndoctor.watching import make_settings
    from nndoctor.watching.attach import attach_globally

    def script():  # a training script's body: everything created inside, a validation pass too
        torch.manual_seed(0)
        model = cases.mlp(softmax=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.NLLLoss()
        x, y = cases.blobs()
        data = cases.batches(x, y, 64)
        for step in range(260):
            if step == 200:
                opt.param_groups[0]["lr"] = 20.0
            xb, yb = next(data)
            loss = loss_fn(torch.log(model(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 50 == 0:
                with torch.no_grad():
                    loss_fn(torch.log(model(x[:64])), y[:64])

    hooks_before = (len(_global_forward_hooks), len(_global_optimizer_pre_hooks))
    with attach_globally(make_settings(alerts=False)) as watch:
        script()
    assert (len(_global_forward_hooks), len(_global_optimizer_pre_hooks)) == hooks_before
    watcher = watch.watcher
    assert isinstance(watcher.model, nn.Sequential) and watcher.step_index == 260
    steps = [s for s, _ in watcher.judge.losses]  # the finite training losses only, from step 0
    assert steps == list(range(len(steps))) and len(steps) > 200
    codes = {e.code for e in watcher.events}
    assert all(e.step >= 200 for e in watcher.events) and "numerics.nonfinite_loss" in codes
    assert watcher.report().causes[0].key == "softmax_before_ce"


def test_watch_script_runs_a_training_script_to_its_stop(tmp_path):
    from nndoctor.watching import make_settings
    from nndoctor.watching.attach import watch_script

    script = tmp_path / "train.py"
    script.write_text(
        "import sys, torch\nfrom torch import nn\n"
        "steps, nan_at = int(sys.argv[1]), int(sys.argv[2])\n"
        "torch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nloss_fn = nn.CrossEntropyLoss()\n"
        "for step in range(steps):\n"
        "    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))\n"
        "    if step == nan_at:\n"
        "        x[0, 0] = float('nan')  # a corrupt batch\n"
        "    loss = loss_fn(model(x), y)\n"
        "    opt.zero_grad(); loss.backward(); opt.step()\n"
        "print('finished')\n"
    )
    result = watch_script(script, ["100", "60"], make_settings(alerts=False, stop_on="fail"))
    assert result.stopped is not None and result.stopped.step == 60
    assert result.stopped.code in ("numerics.nonfinite_output", "numerics.nonfinite_loss")
    assert result.report.timeline.steps == 60
    output = next(e for e in result.report.timeline.events.rows if e[2] == "numerics.nonfinite_output")
    assert output[3] == "0"  # the first module whose output is NaN: the first Linear
    assert result.report.target == str(script) and "stopped by the watch" in result.report.notes[0]
    sound = watch_script(script, ["100", "1000"], make_settings(alerts=False))
    assert sound.stopped is None and sound.report.timeline.steps == 100 and not sound.report.timeline.events.rows
    assert "ran to its end, after 100 optimizer steps" in sound.report.notes[0]
    crashing = tmp_path / "crash.py"
    crashing.write_text(script.read_text().replace("print('finished')", "raise RuntimeError('disk full')"))
    crashed = watch_script(crashing, ["100", "1000"], make_settings(alerts=False))
    assert "raised RuntimeError: disk full, after 100 optimizer steps" in crashed.report.notes[0]
    with pytest.raises(RuntimeError):  # nothing was watched: the script's error is the answer
        watch_script(crashing, ["0", "1000"], make_settings(alerts=False))


def test_a_corrupt_batch_is_traced_to_the_first_module_and_never_reaches_the_weights():
    run = cases.corrupt_batch(stop_on="fail")
    first = run.watcher.events[0]
    assert (first.step, first.code, first.module) == (run.onset, "numerics.nonfinite_output", "0")
    assert run.steps == run.onset and all(torch.isfinite(p).all() for p in run.watcher.model.parameters())


@pytest.mark.parametrize("act, spoil, code", [
    (nn.ReLU, lambda layer: layer.bias.fill_(-100.0), "dead_relu.growing"),  # every unit below 0
    (nn.Tanh, lambda layer: layer.weight.mul_(100.0), "saturation.growing"),  # every unit at +-1
])
def test_units_that_die_or_saturate_during_the_run_are_flagged_with_their_layer(act, spoil, code):
    """What a bad update does to a hidden layer, applied at step 100 of a sound run."""
    torch.manual_seed(0)
    x, y = cases.blobs()
    model = cases.mlp(act=act)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    data = cases.batches(x, y, 64)
    with nndoctor.watch(model, opt, alerts=False) as w:
        for step in range(160):
            if step == 100:
                with torch.no_grad():
                    spoil(model[2])
            xb, yb = next(data)
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            w.step(loss, yb)
            opt.step()
    event = next(e for e in w.events if e.code == code)
    assert 100 <= event.step <= 130 and event.module == "3"
    assert all(e.step >= 100 for e in w.events)


@pytest.mark.parametrize("lr, flagged", [(1.0, True), (1e-3, False)])
def test_updates_far_too_large_for_the_weights_are_flagged(lr, flagged):
    """Adam moves every weight by about lr per step: at 1.0 the first update is as large as the
    weights themselves (||dw||/||w|| ~ 1), at 1e-3 it is ~1e-2 of them."""
    torch.manual_seed(0)
    x, y = cases.blobs()
    model = cases.mlp()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with nndoctor.watch(model, opt, alerts=False, thresholds={"update_ratio": {"persist": 1}}) as w:
        for xb, yb in zip(x.split(64)[:5], y.split(64)[:5]):
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            w.step(loss, yb)
            opt.step()
    events = [e for e in w.events if e.code == "update_ratio.too_large"]
    assert bool(events) is flagged
    if flagged:
        assert events[0].step == 0 and events[0].value > 0.5
