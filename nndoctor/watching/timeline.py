"""A watched job as a Report: one result per watched id (its worst event, or a pass), likely
causes ranked from the events the way the pre-flight report ranks them, and the Timeline (events,
learning-rate changes with the loss around them, the loss curve with the events marked)."""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import TYPE_CHECKING

from nndoctor.diagnosis import Clue, Rule, rank
from nndoctor.result import CheckResult, PlotData, Report, Status, Table, Timeline
from nndoctor.watching.settings import load_watch_catalog

if TYPE_CHECKING:
    from nndoctor.watching.watcher import Watcher

SECTION = "Watching a long job"
MAX_PLOT_POINTS = 2000
MAX_LR_ROWS = 20
MAX_PLOT_EVENTS = 12  # events marked on the plot (the first ones: the start of the trouble); the table has all
FAIL = (Status.FAIL,)

# Likely causes of what the watcher saw. Primary evidence names the cause; supporting evidence is
# what the same cause also produces (seed 000: pinned softmax -> loss spike -> one class takes
# over -> gradients vanish from the last layer back).
RULES: tuple[Rule, ...] = (
    Rule(
        "softmax_before_ce", "Probabilities fed to a log: the softmax saturated at exactly 0/1",
        "Drop the final softmax/sigmoid and give the logits to CrossEntropyLoss/BCEWithLogitsLoss (or use "
        "log_softmax); clipping the probabilities only hides the problem. Then lower the learning rate.",
        (Clue("pinned_probabilities"),),
        (Clue("prediction_collapse"), Clue("gradient_flow", codes=("gradient_flow.vanishing",)),
         Clue("loss_progress", codes=("loss_progress.spike",)), Clue("numerics", codes=("numerics.nonfinite_loss",))),
    ),
    Rule(
        "lr_too_high", "The learning rate is too high (or the warm-up ends too high)",
        "Lower the (peak) learning rate 3-10x, end the warm-up lower, and clip gradients.",
        (Clue("lr_schedule"), Clue("loss_progress", codes=("loss_progress.diverged",)), Clue("update_ratio"),
         Clue("gradient_flow", codes=("gradient_flow.exploding",))),
        (Clue("numerics"), Clue("loss_progress", codes=("loss_progress.spike",)), Clue("weight_growth")),
    ),
    Rule(
        "large_equal_logits", "Large, equal logits: the network stopped telling the classes apart",
        "Feed logits to CrossEntropyLoss instead of the log of a softmax, add weight decay or lower the learning "
        "rate, and keep activations bounded (LeakyReLU, normalization).",
        (Clue("logit_scale"),),
        (Clue("weight_growth"), Clue("prediction_collapse"), Clue("dead_relu")),
    ),
    Rule(
        "numerics", "NaN/Inf during training (log of 0, division by 0, overflow)",
        "Use log_softmax / fused losses instead of log(softmax(x)); add eps inside log and sqrt; lower the LR; "
        "use a GradScaler under fp16.",
        (Clue("numerics", statuses=FAIL),),
        (Clue("loss_progress", codes=("loss_progress.spike",)), Clue("gradient_flow", codes=("gradient_flow.exploding",))),
    ),
    Rule(
        "collapse", "The predictions collapsed onto one class",
        "Check the class sampling and loss weights; return logits to CrossEntropyLoss; lower the learning rate.",
        (Clue("prediction_collapse"),),
        (Clue("loss_progress"),),
    ),
    Rule(
        "vanishing_gradients", "Gradients vanished while the loss is still high",
        "Keep the loss numerically stable, lower the learning rate, and use normalization or residual connections.",
        (Clue("gradient_flow", codes=("gradient_flow.vanishing",)),),
        (Clue("saturation"), Clue("dead_relu")),
    ),
    Rule(
        "dead_relus", "ReLU units died during training",
        "Lower the learning rate, use LeakyReLU, He initialization or a small positive bias.",
        (Clue("dead_relu"),),
        (Clue("gradient_flow"),),
    ),
    Rule(
        "saturated_activations", "tanh/sigmoid units saturated during training",
        "Lower the learning rate, normalize the inputs of the activations, or use ReLU-family activations.",
        (Clue("saturation"),),
        (Clue("gradient_flow"),),
    ),
    Rule(
        "weights_growing", "Weights grow without bound",
        "Add weight decay or normalization layers, or lower the learning rate.",
        (Clue("weight_growth"),),
        (Clue("logit_scale"),),
    ),
)


def _results(watcher: "Watcher") -> tuple[CheckResult, ...]:
    events = watcher.events
    sightings = watcher.judge.sightings()
    results = []
    for spec in load_watch_catalog():
        mine = [e for e in events if e.check == spec.id]
        if not mine:
            results.append(CheckResult(spec.id, spec.title, SECTION, Status.PASS,
                                       f"no problem in {watcher.step_index} steps", codes=()))
            continue
        worst = next(e for s in (Status.FAIL, Status.WARN) for e in mine if e.status is s)
        evidence = tuple(
            f"step {e.step}: {e.summary}" + (f" ({e.module})" if e.module else "")
            + (f", seen {sightings.get((e.code, e.module), 1)}x" if sightings.get((e.code, e.module), 1) > 1 else "")
            for e in mine
        )
        results.append(CheckResult(
            spec.id, spec.title, SECTION, worst.status, f"step {worst.step}: {worst.summary}",
            metrics={"first_step": min(e.step for e in mine), "events": len(mine)},
            evidence=evidence + tuple(x for e in mine for x in e.evidence), fix=spec.fix,
            codes=tuple(dict.fromkeys(e.code for e in mine)),
        ))
    return tuple(results)


def _level(losses: list[tuple[int, float]], start: int, end: int) -> float | None:
    values = [v for s, v in losses if start <= s < end]
    return statistics.median(values) if values else None


def _lr_table(watcher: "Watcher") -> Table:
    """Runs of learning-rate changes on consecutive steps (a warm-up, a decay) as one row each, with
    the loss level over the window before the run and after it."""
    changes = watcher.judge.lr_changes
    window = int(watcher.settings.of("lr_schedule")["window"])
    runs: list[list] = []
    for change in changes:
        if runs and change.step - runs[-1][-1].step <= 1:
            runs[-1].append(change)
        else:
            runs.append([change])
    losses = watcher.judge.losses
    rows = []
    for run in runs[:MAX_LR_ROWS]:
        first, last = run[0], run[-1]
        before = _level(losses, first.step - window, first.step)
        after = _level(losses, last.step, last.step + window)
        steps = f"{first.step}" if first is last else f"{first.step}-{last.step}"
        rows.append((steps, f"{first.before:.3g}", f"{last.after:.3g}",
                     "" if before is None else f"{before:.4g}", "" if after is None else f"{after:.4g}"))
    title = "Learning rate changes" + (f" (first {MAX_LR_ROWS} of {len(runs)})" if len(runs) > MAX_LR_ROWS else "")
    return Table(title, ("steps", "lr from", "lr to", "loss before", "loss after"), tuple(rows))


def _plot(watcher: "Watcher") -> PlotData:
    losses = watcher.judge.losses
    stride = max(1, len(losses) // MAX_PLOT_POINTS)
    shown = losses[::stride]
    series = [("loss", tuple(s for s, _ in shown), tuple(v for _, v in shown))]
    for event in watcher.events[:MAX_PLOT_EVENTS]:
        near = [v for s, v in losses if s <= event.step] or [v for _, v in losses[:1]]
        if near:
            series.append((f"step {event.step}: {event.code}", (event.step,), (near[-1],)))
    positive = bool(losses) and all(v > 0 for _, v in losses)
    return PlotData("timeline", "Loss and events while watching", "optimizer step", "loss", tuple(series), log_y=positive)


def build_report(watcher: "Watcher") -> Report:
    events = Table("Events", ("step", "status", "code", "where", "what"),
                   tuple((e.step, e.status.value, e.code, e.module or "", e.summary) for e in watcher.events))
    timeline = Timeline(
        steps=watcher.step_index, events=events, lr_changes=_lr_table(watcher), plot=_plot(watcher),
        stopped=watcher.stopped.line() if watcher.stopped else None,
    )
    results = _results(watcher)
    model = type(watcher.model).__name__
    report = Report(
        target=f"watch: {model}", task="watch", task_source="a watched training job", seed=0,
        device=str(next((p.device for p in watcher.model.parameters()), "cpu")), results=results,
        duration_s=watcher.duration_s,
        notes=tuple(watcher.notes) + (f"Heavy statistics sampled every {watcher.settings.sample_every} steps.",),
        timeline=timeline,
    )
    return replace(report, causes=rank(results, RULES))
