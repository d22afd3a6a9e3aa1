"""The watcher's corpus (benchmarks/watch/watch_cases.py) run end to end: faults caught, steps from
onset to the first alert, false alerts per 10,000 sound steps.

    python benchmarks/watch.py [--only NAME ...] [--sample-every K] [--sound-scale X]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "watch"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import watch_cases as cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="case function names")
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--sound-scale", type=float, default=1.0, help="run the sound cases this many times longer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = lambda group: [c for c in group if args.only is None or c.__name__ in args.only]
    caught, delays, faults = 0, [], chosen(cases.FAULTS)
    print(f"{'case':34} {'onset':>5} {'alert':>5} {'delay':>5}  first codes / cause")
    for case in faults:
        start = time.perf_counter()
        run = case(sample_every=args.sample_every)
        events = run.watcher.events
        early = [e for e in events if e.step < run.onset]
        first = min((e.step for e in events if e.step >= run.onset), default=None)
        if first is not None:
            caught += 1
            delays.append(first - run.onset)
        cause = run.watcher.report().causes[0].key if run.watcher.report().causes else "-"
        codes = ", ".join(dict.fromkeys(e.code for e in events))[:90]
        print(f"{run.name:34} {run.onset:5} {first if first is not None else '-':>5} "
              f"{first - run.onset if first is not None else '-':>5}  {codes} -> {cause}"
              + (f"  [{len(early)} alert(s) before onset]" if early else "") + f" ({time.perf_counter() - start:.1f}s)")
    sound_steps = false_alerts = 0
    for case in chosen(cases.SOUND):
        start = time.perf_counter()
        steps = int(case.__defaults__[0] * args.sound_scale)
        run = case(steps, sample_every=args.sample_every)
        sound_steps += run.steps
        false_alerts += len(run.watcher.events)
        print(f"{run.name:34} sound, {run.steps} steps, {len(run.watcher.events)} alert(s) "
              f"{[e.code for e in run.watcher.events]} ({time.perf_counter() - start:.1f}s)")
    print()
    if faults:
        print(f"faults caught: {caught}/{len(faults)}; steps from onset to alert: "
              f"{', '.join(map(str, delays))} (max {max(delays, default=0)})")
    if sound_steps:
        print(f"false alerts: {false_alerts} in {sound_steps} sound steps = {1e4 * false_alerts / sound_steps:.1f} per 10,000 steps")


if __name__ == "__main__":
    main()
