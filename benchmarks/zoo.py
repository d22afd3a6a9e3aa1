"""The fault zoo benchmark: run nndoctor on every model file in benchmarks/zoo/ and measure how
often it is right.

    python benchmarks/zoo.py                      # all cases, one worker
    python benchmarks/zoo.py --jobs 2             # two cases at a time (one torch thread each)
    python benchmarks/zoo.py --only softmax       # cases whose file name contains "softmax"
    python benchmarks/zoo.py --json zoo.json      # also write the raw per-case table
    python benchmarks/zoo.py --peers              # also run neural-net-checklist on the same cases
    python benchmarks/zoo.py --peers-only --json peers.json   # only the peer (no nndoctor)
    python benchmarks/zoo.py --compare zoo.json peers.json    # run nothing: print the two side by side

Each zoo file declares EXPECT_FAIL (check ids that must report `fail`; [] for sound setups) and,
for broken ones, EXPECT_CAUSE (the likely-cause key nndoctor should rank first, or None where no
key names the bug). The metrics printed (see benchmarks/README.md):

- recall of a check: among broken cases that list it in EXPECT_FAIL, the share where it failed;
- precision of a check: its expected fails / all its fails on broken and sound cases. A fail on a
  broken case outside EXPECT_FAIL is counted against precision even when it is a true secondary
  symptom (EXPECT_FAIL lists only what must fail in principle), so precision is a lower bound;
- detection: broken cases where every EXPECT_FAIL id failed ("all"), and where at least one did;
- false alarms: sound cases with any `fail`;
- cause ranking: broken cases (with an EXPECT_CAUSE) whose likely causes rank it first / in top 3.

The peer, neural-net-checklist (`pip install -e '.[bench]'`), runs its seven asserts one by one on
each case's model, loss and nndoctor's 50 overfit samples (the two cross-entropy ones on
single-label classification only), its overfit capped at --peer-steps (default 1000; its own
default is 2**16). The peer table counts a case as caught (broken) or a false alarm (sound) when
an assert fails, once without and once with overfits that merely ran out of the cap ("capped");
a peer crash is not a flag.

Always exits 0: it is a benchmark, not a test (tests/test_zoo_subset.py is the regression test).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import math
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ZOO = Path(__file__).resolve().parent / "zoo"
SEED = 0
PEER_OVERFIT_STEPS = 1000  # the peer's own default is 2**16 Adam steps; capped so the zoo ends
PEER_SAMPLES = 50  # the batch handed to the peer: the same 50 samples nndoctor overfits


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect_fail: tuple[str, ...]
    expect_cause: str | None

    @property
    def broken(self) -> bool:
        return self.name.startswith("broken_")


@dataclass
class Outcome:
    name: str
    broken: bool
    expect_fail: list[str]
    expect_cause: str | None
    statuses: dict[str, str] = field(default_factory=dict)
    causes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    crash: str | None = None  # nndoctor itself could not run the case (load error)
    peer: dict | None = None

    @classmethod
    def of(cls, case: Case) -> "Outcome":
        """The outcome of a case before anything ran on it."""
        return cls(case.name, case.broken, list(case.expect_fail), case.expect_cause)

    def ids(self, status: str) -> list[str]:
        return [check for check, s in self.statuses.items() if s == status]


def declared(path: Path, name: str, default: object) -> object:
    """A module-level literal of a zoo file, read without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default


def discover(only: str | None = None) -> list[Case]:
    cases = []
    for path in sorted(ZOO.glob("*.py")):
        if not path.stem.startswith(("broken_", "sound_")) or (only and only not in path.stem):
            continue
        cases.append(Case(path.stem, path, tuple(declared(path, "EXPECT_FAIL", [])), declared(path, "EXPECT_CAUSE", None)))
    return cases


def run_nndoctor(case: Case) -> Outcome:
    from nndoctor.engine import run_path
    from nndoctor.options import RunOptions

    outcome = Outcome.of(case)
    start = time.perf_counter()
    try:
        report = run_path(case.path, options=RunOptions(seed=SEED, device="cpu"))
    except Exception as exc:  # a load error is a result of the benchmark, not a reason to stop it
        outcome.crash = f"{type(exc).__name__}: {exc}"
    else:
        outcome.statuses = {r.id: r.status.value for r in report.results}
        outcome.causes = [c.key for c in report.causes]
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_case(case: Case, threads: int, nndoctor: bool = True, peer_steps: int | None = None) -> Outcome:
    """nndoctor on the case (unless told not to), and the peer with its overfit capped at
    peer_steps (unless None)."""
    import torch

    torch.set_num_threads(threads)
    outcome = run_nndoctor(case) if nndoctor else Outcome.of(case)
    if peer_steps is not None:
        outcome.peer = run_peer(case, peer_steps)
    return outcome


# --- neural-net-checklist (optional benchmark dependency) -------------------------------------

# Its asserts in the order its assert_all_for_classification_cross_entropy_loss runs them. The
# first two assume softmax cross-entropy over integer labels, so they run on single-label
# classification cases only; the others take any model, batch and loss.
PEER_ASSERTS = (
    "loss_at_init", "init_calibrated", "forward_batch_independence", "non_zero_gradients",
    "backward_batch_independence", "input_independent_baseline_worse", "overfit_to_batch",
)


def _peer_calls(nnc, ctx, batch, overfit_steps: int) -> dict:
    """Each peer assert as a call on the case's model factory, batch and loss, with the
    keyword arguments of the peer's signatures (neural-net-checklist 1.1). Each call takes the
    training loop the overfit assert should use (the peer's own, recorded)."""
    import torch

    subject = ctx.subject
    factory, loss_fn = subject.fresh_model, subject.loss_fn
    calls = {
        "forward_batch_independence": lambda _: nnc.assert_forward_batch_independence(factory, batch, device="cpu"),
        "non_zero_gradients": lambda _: nnc.assert_non_zero_gradients(factory(), batch, device="cpu"),
        "backward_batch_independence": lambda _: nnc.assert_backward_batch_independence(factory, batch, device="cpu"),
        "input_independent_baseline_worse": lambda _: nnc.assert_input_independent_baseline_worse(
            factory, batch, loss_fn=loss_fn, device="cpu"),
        # The peer trains with its own Adam(lr=3e-4), whatever the case's optimizer, to loss < 1e-4.
        "overfit_to_batch": lambda train_batch: nnc.assert_overfit_to_batch(
            factory(), batch, train_batch_fn=train_batch, loss_fn=loss_fn, max_steps=overfit_steps, device="cpu"),
    }
    _, labels = batch
    if subject.is_classification and isinstance(labels, torch.Tensor) and labels.dim() == 1:
        # The class count a user would pass: the labels' range, not the model's output width
        # (which is what a wrong head gets wrong).
        num_classes = int(ctx.scan()[1].max()) + 1
        calls["loss_at_init"] = lambda _: nnc.assert_balanced_classification_cross_entropy_loss_at_init(
            factory(), batch, num_classes=num_classes, loss_fn=loss_fn, device="cpu")
        calls["init_calibrated"] = lambda _: nnc.assert_balanced_classification_cross_entropy_init_calibrated(
            factory(), batch, num_classes=num_classes, device="cpu")
    return {name: calls[name] for name in PEER_ASSERTS if name in calls}


def _one_line(message: str, limit: int = 200) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _recording(train_batch, losses: list[float]):
    """The peer's training loop, unchanged, keeping the losses it yields (to report how far a
    capped overfit got)."""

    def train(*args, **kwargs):
        for loss, optimizer in train_batch(*args, **kwargs):
            losses.append(loss)
            yield loss, optimizer

    return train


def _judge(name: str, call, nnc) -> tuple[str, str, list[float]]:
    """(status, message, training losses) of one peer assert. Status: pass, fail, error (it
    raised something other than an AssertionError) or capped (the overfit ran out of our step cap
    with a finite loss: the peer at its own 2**16 steps might still have got below its threshold)."""
    losses: list[float] = []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            call(_recording(nnc.train_batch, losses))
        except AssertionError as exc:
            capped = name == "overfit_to_batch" and losses and math.isfinite(losses[-1])
            return ("capped" if capped else "fail"), _one_line(str(exc)), losses
        except Exception as exc:  # the peer crashing on a model is part of what we measure
            return "error", _one_line(f"{type(exc).__name__}: {exc}"), losses
    return "pass", "", losses


def run_peer(case: Case, overfit_steps: int = PEER_OVERFIT_STEPS) -> dict:
    """Run neural-net-checklist's asserts one by one (so one failing assert does not hide the
    others) on the case's model, loss and the same PEER_SAMPLES samples nndoctor overfits.

    Returns {"asserts": {assert: status}, "messages": {assert: message}, "overfit_loss": [first,
    last], "overfit_steps": the cap, "seconds": time of the asserts} (statuses as in _judge;
    asserts that do not apply are left out), or {"skipped": why}."""
    try:
        from neural_net_checklist import torch_diagnostics as nnc
    except ImportError:
        return {"skipped": "neural-net-checklist is not installed (pip install -e '.[bench]')"}
    import torch

    from nndoctor.config import Config
    from nndoctor.context import Context
    from nndoctor.loading import load_subject

    try:
        subject = load_subject(case.path, Config(), device="cpu", seed=SEED)
    except Exception as exc:  # the zoo file itself cannot be loaded: nothing to hand the peer
        return {"skipped": f"could not load the case: {type(exc).__name__}: {_one_line(str(exc), 120)}"}
    ctx = Context(subject)
    batch = ctx.batch(PEER_SAMPLES)
    result: dict = {"asserts": {}, "messages": {}, "overfit_steps": overfit_steps}
    start = time.perf_counter()
    for name, call in _peer_calls(nnc, ctx, batch, overfit_steps).items():
        torch.manual_seed(SEED)
        status, message, losses = _judge(name, call, nnc)
        result["asserts"][name] = status
        if message:
            result["messages"][name] = message
        if losses:  # first and last loss of the peer's overfit: how far a capped one got
            result["overfit_loss"] = [losses[0], losses[-1]]
    result["seconds"] = time.perf_counter() - start
    return result


# --- metrics -----------------------------------------------------------------------------------


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def per_check_table(outcomes: list[Outcome]) -> list[tuple[str, str, str, str]]:
    checks = sorted({c for o in outcomes for c in o.statuses} | {c for o in outcomes for c in o.expect_fail})
    rows = []
    for check in checks:
        expected = [o for o in outcomes if o.broken and check in o.expect_fail]
        hits = [o for o in expected if o.statuses.get(check) == "fail"]
        fails = [o for o in outcomes if o.statuses.get(check) == "fail"]
        extra = sorted(o.name for o in fails if check not in o.expect_fail)
        rows.append((check, share(len(hits), len(expected)), share(len(hits), len(fails)), ", ".join(extra)))
    return rows


def summary_lines(outcomes: list[Outcome]) -> list[str]:
    broken = [o for o in outcomes if o.broken]
    sound = [o for o in outcomes if not o.broken]
    all_hit = [o for o in broken if o.expect_fail and set(o.expect_fail) <= set(o.ids("fail"))]
    any_hit = [o for o in broken if set(o.expect_fail) & set(o.ids("fail"))]
    alarms = [o for o in sound if o.ids("fail")]
    with_cause = [o for o in broken if o.expect_cause]
    first = [o for o in with_cause if o.causes[:1] == [o.expect_cause]]
    top3 = [o for o in with_cause if o.expect_cause in o.causes[:3]]
    seconds = [o.seconds for o in outcomes]
    errors = sum(len(o.ids("error")) for o in outcomes)
    alarm_names = "".join(f"\n      {o.name}: {', '.join(o.ids('fail'))}" for o in alarms)
    return [
        f"cases: {len(broken)} broken, {len(sound)} sound",
        f"detection, every EXPECT_FAIL id failed:  {share(len(all_hit), len(broken))}",
        f"detection, at least one EXPECT_FAIL id:  {share(len(any_hit), len(broken))}",
        f"broken cases with any fail at all:       {share(sum(bool(o.ids('fail')) for o in broken), len(broken))}",
        f"false alarms (sound case with a fail):   {share(len(alarms), len(sound))}{alarm_names}",
        f"likely cause ranked first:               {share(len(first), len(with_cause))}",
        f"likely cause in the top 3:               {share(len(top3), len(with_cause))}",
        f"check errors (status error):             {errors}; cases nndoctor could not load: {sum(o.crash is not None for o in outcomes)}",
        f"time per case: mean {statistics.mean(seconds):.1f} s, median {statistics.median(seconds):.1f} s, "
        f"max {max(seconds):.1f} s ({max(outcomes, key=lambda o: o.seconds).name}); total {sum(seconds):.0f} s",
    ]


def case_lines(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.crash:
            lines.append(f"  {o.name}: COULD NOT RUN: {o.crash[:160]}")
            continue
        failed = set(o.ids("fail"))
        missed = [c for c in o.expect_fail if c not in failed]
        mark = "ok  " if not missed and (o.broken or not failed) else "MISS" if o.broken else "FA  "
        cause = f"cause {o.causes[0] if o.causes else '-'}" + (f" (want {o.expect_cause})" if o.broken and o.expect_cause else "")
        errors = f" errors {o.ids('error')}" if o.ids("error") else ""
        lines.append(f"  {mark} {o.name:48s} {o.seconds:5.1f}s fail {sorted(failed)}"
                     + (f" missed {missed}" if missed else "") + f"; {cause}{errors}")
    return lines


def peer_ran(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.peer and "skipped" not in o.peer]


def peer_ids(o: Outcome, *statuses: str) -> list[str]:
    return [name for name, status in o.peer["asserts"].items() if status in statuses]


def nndoctor_missed(o: Outcome) -> list[str]:
    """The EXPECT_FAIL ids nndoctor did not fail on a case."""
    return [check for check in o.expect_fail if check not in o.ids("fail")]


def overfit_trend(o: Outcome) -> str:
    first, last = o.peer["overfit_loss"]
    return f"(loss {first:.3g} -> {last:.3g})"


def peer_case_line(o: Outcome, with_nndoctor: bool) -> str:
    fails, capped, errors = peer_ids(o, "fail"), peer_ids(o, "capped"), peer_ids(o, "error")
    if o.broken:
        mark = "caught" if fails else "capped" if capped else "missed"
    else:
        mark = "FA" if fails else "FA?" if capped else "ok"
    line = f"  {mark:6s} {o.name:48s} {o.peer['seconds']:5.1f}s fail {fails}"
    line += f" capped {capped} {overfit_trend(o)}" if capped else ""
    line += f" errors {errors}" if errors else ""
    if with_nndoctor:
        missed = nndoctor_missed(o)
        line += f" | nndoctor {o.seconds:5.1f}s fail {sorted(o.ids('fail'))}" + (f" MISSED {missed}" if missed else "")
    return line


def _times(seconds: list[float]) -> str:
    return f"mean {statistics.mean(seconds):.1f} s, median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s"


def peer_summary_lines(ran: list[Outcome], with_nndoctor: bool) -> list[str]:
    broken = [o for o in ran if o.broken]
    sound = [o for o in ran if not o.broken]

    def flagged(cases: list[Outcome]) -> str:
        strict = sum(bool(peer_ids(o, "fail")) for o in cases)
        capped = sum(bool(peer_ids(o, "fail", "capped")) for o in cases)
        return f"{share(strict, len(cases))}, {share(capped, len(cases))} counting capped overfits"

    def failing(cases: list[Outcome]) -> str:
        return share(sum(bool(o.ids("fail")) for o in cases), len(cases))

    all_hit = sum(not nndoctor_missed(o) for o in broken)
    any_hit = sum(len(nndoctor_missed(o)) < len(o.expect_fail) for o in broken)
    return [
        f"cases: {len(broken)} broken, {len(sound)} sound",
        f"peer, broken cases with a failed assert:  {flagged(broken)}",
        *([f"nndoctor, broken cases:                  every EXPECT_FAIL id failed {share(all_hit, len(broken))}, "
           f"at least one {share(any_hit, len(broken))}, any fail {failing(broken)}"] if with_nndoctor else []),
        f"peer, sound cases with a failed assert:   {flagged(sound)}",
        *([f"nndoctor, sound cases with a fail:        {failing(sound)}"] if with_nndoctor else []),
        f"peer, cases where an assert crashed:      {share(sum(bool(peer_ids(o, 'error')) for o in ran), len(ran))}",
        f"time per case: peer {_times([o.peer['seconds'] for o in ran])}"
        + (f"; nndoctor {_times([o.seconds for o in ran])}" if with_nndoctor else ""),
    ]


def peer_assert_lines(ran: list[Outcome]) -> list[str]:
    columns = (("fail", True), ("capped", True), ("fail", False), ("capped", False), ("error", None), ("pass", None))
    header = ("fail brk", "cap brk", "fail snd", "cap snd", "error", "pass")
    lines = [f"  {'assert':34s} " + " ".join(f"{h:>8s}" for h in header)]
    for name in PEER_ASSERTS:
        counts = [sum(o.peer["asserts"].get(name) == status and (broken is None or o.broken == broken) for o in ran)
                  for status, broken in columns]
        lines.append(f"  {name:34s} " + " ".join(f"{n:>8d}" for n in counts))
    return lines


def peer_message_lines(title: str, cases: list[Outcome], statuses: tuple[str, ...]) -> list[str]:
    lines = [f"{title}: {len(cases) or 'none'}"]
    for o in cases:
        for name in peer_ids(o, *statuses):
            trend = f" {overfit_trend(o)}" if o.peer["asserts"][name] == "capped" else ""
            lines.append(f"  {o.name} / {name}: {o.peer['messages'][name]}{trend}")
    return lines


def peer_lines(outcomes: list[Outcome], with_nndoctor: bool) -> list[str]:
    """The peer table: per case, its summary, per assert, and the cases worth reading."""
    ran = peer_ran(outcomes)
    skipped = [f"  {o.name}: {o.peer['skipped']}" for o in outcomes if o.peer and "skipped" in o.peer]
    if not ran:
        return ["neural-net-checklist did not run:", *skipped]
    lines = ["Per case (caught / missed a broken case; FA = a sound case failed an assert; capped = "
             "overfit_to_batch ran out of the step cap with a finite loss, FA? when that is the only failure):"]
    lines += [peer_case_line(o, with_nndoctor) for o in ran]
    lines += ["", "Per assert (cases by status; brk = broken, snd = sound; asserts not applying are not counted):"]
    lines += peer_assert_lines(ran)
    lines += ["", "Overall:", *(f"  {line}" for line in peer_summary_lines(ran, with_nndoctor))]
    broken = [o for o in ran if o.broken]
    lines += [""] + peer_message_lines(
        "False alarms of the peer (sound cases)", [o for o in ran if not o.broken and peer_ids(o, "fail", "capped")],
        ("fail", "capped"))
    if with_nndoctor:
        missed_by_us = [o for o in broken if peer_ids(o, "fail", "capped") and nndoctor_missed(o)]
        lines += [""] + peer_message_lines(
            "Broken cases the peer flags where an expected nndoctor check did not fail (a bug in nndoctor "
            "if the assert failed for the case's bug)", missed_by_us, ("fail", "capped"))
    crashed = [o for o in ran if peer_ids(o, "error")]
    lines += [""] + peer_message_lines("Cases where a peer assert crashed", crashed, ("error",))
    if skipped:
        lines += ["", "Not run:", *skipped]
    return lines


def print_report(outcomes: list[Outcome]) -> None:
    print("\nPer case (ok / MISS = an EXPECT_FAIL id did not fail / FA = false alarm on a sound case):")
    print("\n".join(case_lines(outcomes)))
    print("\nPer check (recall = expected fails caught; precision = expected fails / all fails; "
          "extra = cases where it failed outside EXPECT_FAIL):")
    print(f"  {'check':22s} {'recall':14s} {'precision':14s} extra fails")
    for check, recall, precision, extra in per_check_table(outcomes):
        print(f"  {check:22s} {recall:14s} {precision:14s} {extra}")
    print("\nOverall:")
    print("\n".join(f"  {line}" for line in summary_lines(outcomes)))


def print_peer_report(outcomes: list[Outcome], with_nndoctor: bool) -> None:
    caps = sorted({o.peer.get("overfit_steps", PEER_OVERFIT_STEPS) for o in peer_ran(outcomes)})
    print(f"\nneural-net-checklist (overfit capped at {' / '.join(map(str, caps)) or '-'} steps)"
          + (" beside nndoctor" if with_nndoctor else "") + ":")
    print("\n".join(f"  {line}" for line in peer_lines(outcomes, with_nndoctor)))


def load_outcomes(path: Path) -> list[Outcome]:
    return [Outcome(**row) for row in json.loads(path.read_text())]


def compare(nndoctor_json: Path, peers_json: Path | None = None) -> list[Outcome]:
    """nndoctor's outcomes with the peer's results of a --peers-only run attached (by case name);
    without a second file, the outcomes of a --peers run as they are."""
    outcomes = load_outcomes(nndoctor_json)
    if peers_json is not None:
        peers = {o.name: o.peer for o in load_outcomes(peers_json)}
        for outcome in outcomes:
            outcome.peer = peers.get(outcome.name)
    return outcomes


def run_cases(cases: list[Case], args: argparse.Namespace) -> list[Outcome]:
    nndoctor, peer = not args.peers_only, args.peers or args.peers_only
    peer_steps = args.peer_steps if peer else None
    tools = " and ".join(name for name, on in (("nndoctor", nndoctor), ("neural-net-checklist", peer)) if on)
    print(f"running {tools} on {len(cases)} zoo cases (seed {SEED}, cpu, {args.jobs} job(s) x {args.threads} thread(s))")
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_case, case, args.threads, nndoctor, peer_steps) for case in cases]
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            line = case_lines([outcome])[0] if nndoctor else peer_progress_line(outcome)
            print(f"  [{len(outcomes)}/{len(cases)}]{line}", flush=True)
    return outcomes


def peer_progress_line(o: Outcome) -> str:
    if "skipped" in o.peer:
        return f"  {o.name}: not run: {o.peer['skipped']}"
    return peer_case_line(o, with_nndoctor=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--only", help="run only cases whose file name contains this substring")
    parser.add_argument("--json", type=Path, help="write the raw per-case results to this file")
    parser.add_argument("--peers", action="store_true", help="also run neural-net-checklist on every case")
    parser.add_argument("--peers-only", action="store_true", help="run only neural-net-checklist, not nndoctor")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="JSON",
                        help="run nothing: print the peer table from ZOO.json [PEERS.json] (a --json of an "
                             "nndoctor run, and of a --peers-only run; or one --peers run)")
    parser.add_argument("--peer-steps", type=int, default=PEER_OVERFIT_STEPS,
                        help=f"cap on the peer's overfit steps (default {PEER_OVERFIT_STEPS}; its own is 2**16)")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at a time, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (1 avoids oversubscription)")
    args = parser.parse_args(argv)
    if args.compare:
        if len(args.compare) > 2:
            parser.error("--compare takes ZOO.json and at most one PEERS.json")
        print_peer_report(compare(*args.compare), with_nndoctor=True)
        return 0
    cases = discover(args.only)
    if not cases:
        print(f"no zoo case matches {args.only!r}")
        return 0
    outcomes = run_cases(cases, args)
    if args.json:  # first: the raw results survive a failure of the printing below
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
        print(f"\nraw results: {args.json}")
    if not args.peers_only:
        print_report(outcomes)
    if args.peers or args.peers_only:
        print_peer_report(outcomes, with_nndoctor=not args.peers_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
