"""The fault zoo benchmark: run nndoctor on every model file in benchmarks/zoo/ and measure how
often it is right.

    python benchmarks/zoo.py                      # all cases, one worker
    python benchmarks/zoo.py --jobs 2             # two cases at a time (one torch thread each)
    python benchmarks/zoo.py --only softmax       # cases whose file name contains "softmax"
    python benchmarks/zoo.py --json zoo.json      # also write the raw per-case table
    python benchmarks/zoo.py --peers              # also run neural-net-checklist on the same cases

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

Always exits 0: it is a benchmark, not a test (tests/test_zoo_subset.py is the regression test).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
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

    outcome = Outcome(case.name, case.broken, list(case.expect_fail), case.expect_cause)
    start = time.perf_counter()
    try:
        report = run_path(case.path, seed=SEED, device="cpu")
    except Exception as exc:  # a load error is a result of the benchmark, not a reason to stop it
        outcome.crash = f"{type(exc).__name__}: {exc}"
    else:
        outcome.statuses = {r.id: r.status.value for r in report.results}
        outcome.causes = [c.key for c in report.causes]
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_case(case: Case, threads: int, peers: bool) -> Outcome:
    import torch

    torch.set_num_threads(threads)
    outcome = run_nndoctor(case)
    if peers:
        outcome.peer = run_peer(case)
    return outcome


# --- neural-net-checklist (optional benchmark dependency) -------------------------------------


def _classification_batch(dataset):
    """The first PEER_SAMPLES (inputs, integer labels) if the case is single-label classification."""
    import torch

    items = [dataset[i] for i in range(min(PEER_SAMPLES, len(dataset)))]
    inputs = torch.stack([torch.as_tensor(x) for x, _ in items])
    labels = torch.stack([torch.as_tensor(y) for _, y in items])
    if labels.is_floating_point() or labels.dim() != 1:
        return None
    return inputs, labels


def run_peer(case: Case) -> dict:
    """Run neural-net-checklist's classification asserts one by one (so one failing assert does
    not hide the others), with the case's own loss where the assert accepts one."""
    import torch

    try:
        from neural_net_checklist import torch_diagnostics as nnc
    except ImportError:
        return {"skipped": "neural-net-checklist is not installed (pip install neural-net-checklist)"}
    from nndoctor.loading import import_model_file

    torch.manual_seed(SEED)
    module = import_model_file(case.path)
    dataset = module.build_dataset()
    batch = _classification_batch(dataset)
    if batch is None:
        return {"skipped": "not single-label classification"}
    all_labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    num_classes = int(all_labels.max()) + 1
    loss_fn = getattr(module, "loss_fn", None) or torch.nn.functional.cross_entropy

    def factory():
        torch.manual_seed(SEED)
        return module.build_model()

    asserts = {
        "loss_at_init": lambda: nnc.assert_balanced_classification_cross_entropy_loss_at_init(
            factory(), batch, num_classes=num_classes, loss_fn=loss_fn, device="cpu"),
        "init_calibrated": lambda: nnc.assert_balanced_classification_cross_entropy_init_calibrated(
            factory(), batch, num_classes=num_classes, device="cpu"),
        "forward_batch_independence": lambda: nnc.assert_forward_batch_independence(factory, batch, device="cpu"),
        "non_zero_gradients": lambda: nnc.assert_non_zero_gradients(factory(), batch, device="cpu"),
        "backward_batch_independence": lambda: nnc.assert_backward_batch_independence(factory, batch, device="cpu"),
        "input_independent_baseline_worse": lambda: nnc.assert_input_independent_baseline_worse(
            factory, batch, loss_fn=loss_fn, device="cpu"),
        "overfit_to_batch": lambda: nnc.assert_overfit_to_batch(
            factory(), batch, loss_fn=loss_fn, max_steps=PEER_OVERFIT_STEPS, device="cpu"),
    }
    failed, errored = [], []
    start = time.perf_counter()
    for name, call in asserts.items():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                call()
            except AssertionError:
                failed.append(name)
            except Exception as exc:  # the peer crashing on a model is part of what we measure
                errored.append(f"{name}: {type(exc).__name__}: {str(exc)[:80]}")
    return {"failed": failed, "errored": errored, "seconds": time.perf_counter() - start}


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


def peer_lines(outcomes: list[Outcome]) -> list[str]:
    ran = [o for o in outcomes if o.peer and "skipped" not in o.peer]
    if not ran:
        skipped = {o.peer.get("skipped") for o in outcomes if o.peer}
        return [f"neural-net-checklist: not run ({'; '.join(s for s in skipped if s)})"]
    broken = [o for o in ran if o.broken]
    sound = [o for o in ran if not o.broken]
    lines = [
        f"{'case':48s} {'nndoctor':9s} {'peer':5s} peer asserts failed (errors)",
    ]
    for o in ran:
        ours = "flags" if o.ids("fail") else "-"
        theirs = "flags" if o.peer["failed"] else "-"
        errs = f" ({'; '.join(o.peer['errored'])})" if o.peer["errored"] else ""
        lines.append(f"{o.name:48s} {ours:9s} {theirs:5s} {', '.join(o.peer['failed'])}{errs}")
    peer_time = [o.peer["seconds"] for o in ran]
    ours_time = [o.seconds for o in ran]
    only_peer = [o.name for o in broken if o.peer["failed"] and not o.ids("fail")]
    lines += [
        "",
        f"classification cases: {len(broken)} broken, {len(sound)} sound",
        f"broken flagged (any fail / failed assert):  nndoctor {share(sum(bool(o.ids('fail')) for o in broken), len(broken))}, "
        f"peer {share(sum(bool(o.peer['failed']) for o in broken), len(broken))}",
        f"false alarms on sound:                      nndoctor {share(sum(bool(o.ids('fail')) for o in sound), len(sound))}, "
        f"peer {share(sum(bool(o.peer['failed']) for o in sound), len(sound))}",
        f"peer crashed (an assert raised a non-assertion error): {sum(bool(o.peer['errored']) for o in ran)} cases",
        f"time per case: nndoctor mean {statistics.mean(ours_time):.1f} s, peer mean {statistics.mean(peer_time):.1f} s "
        f"(peer overfit capped at {PEER_OVERFIT_STEPS} steps)",
        f"broken cases the peer flags and nndoctor does not: {only_peer or 'none'}",
    ]
    return lines


def print_report(outcomes: list[Outcome], peers: bool) -> None:
    print("\nPer case (ok / MISS = an EXPECT_FAIL id did not fail / FA = false alarm on a sound case):")
    print("\n".join(case_lines(outcomes)))
    print("\nPer check (recall = expected fails caught; precision = expected fails / all fails; "
          "extra = cases where it failed outside EXPECT_FAIL):")
    print(f"  {'check':22s} {'recall':14s} {'precision':14s} extra fails")
    for check, recall, precision, extra in per_check_table(outcomes):
        print(f"  {check:22s} {recall:14s} {precision:14s} {extra}")
    print("\nOverall:")
    print("\n".join(f"  {line}" for line in summary_lines(outcomes)))
    if peers:
        print("\nAgainst neural-net-checklist (classification cases):")
        print("\n".join(f"  {line}" for line in peer_lines(outcomes)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run only cases whose file name contains this substring")
    parser.add_argument("--json", type=Path, help="write the raw per-case results to this file")
    parser.add_argument("--peers", action="store_true", help="also run neural-net-checklist on classification cases")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at a time, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (1 avoids oversubscription)")
    args = parser.parse_args(argv)
    cases = discover(args.only)
    if not cases:
        print(f"no zoo case matches {args.only!r}")
        return 0
    print(f"running nndoctor on {len(cases)} zoo cases (seed {SEED}, cpu, {args.jobs} job(s) x {args.threads} thread(s))")
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_case, case, args.threads, args.peers) for case in cases]
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            print(f"  [{len(outcomes)}/{len(cases)}]{case_lines([outcome])[0]}", flush=True)
    print_report(outcomes, args.peers)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
        print(f"\nraw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
