"""The scripts benchmark: run `nndoctor run` on every training script in benchmarks/scripts/ and
measure how often it is right, like benchmarks/zoo.py does for model files.

    python benchmarks/scripts.py                   # every script, one at a time
    python benchmarks/scripts.py --jobs 2          # two scripts at a time
    python benchmarks/scripts.py --only lambdalr   # scripts whose file name contains "lambdalr"
    python benchmarks/scripts.py --json out.json   # also write the raw per-script results
    python benchmarks/scripts.py --steps 100       # optimizer steps nndoctor observes per script

Each script is run as `python -m nndoctor run SCRIPT --steps N --json OUT --device cpu` in its own
process (one torch thread). Each declares EXPECT_FAIL (check ids that must report `fail`; [] for
sound scripts) and EXPECT_CAUSE (the likely-cause key that should rank first, or None). Printed:
detection (broken scripts where every EXPECT_FAIL id failed, and where at least one did), false
alarms (sound scripts with any fail), likely cause first, and time per script. Whether each script
really learns is measured separately, without nndoctor, by benchmarks/scripts_truth.py.
Always exits 0: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts_truth import declared, discover

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STEPS = 100
TIMEOUT_S = 1800
NO_RUN_COMMAND = "No such command 'run'"


def run_nndoctor(path: Path, steps: int) -> dict:
    row = {"script": path.stem, "expect_fail": declared(path, "EXPECT_FAIL", []),
           "expect_cause": declared(path, "EXPECT_CAUSE", None), "statuses": {}, "codes": {}, "causes": [],
           "exit": None, "error": "", "seconds": 0.0}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "nndoctor", "run", str(path), "--steps", str(steps),
                   "--json", str(out), "--device", "cpu"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            row["error"] = f"timed out after {TIMEOUT_S} s"
            return row
        finally:
            row["seconds"] = time.perf_counter() - start
        row["exit"] = proc.returncode
        if NO_RUN_COMMAND in proc.stderr + proc.stdout:
            row["error"] = "no `nndoctor run` command in this nndoctor"
            return row
        if not out.exists():
            row["error"] = f"exit {proc.returncode}, no JSON: " + ((proc.stderr.strip().splitlines() or [""])[-1])[:200]
            return row
        report = json.loads(out.read_text())
    row["statuses"] = {c["id"]: c["status"] for c in report.get("checks", [])}
    row["codes"] = {c["id"]: c.get("codes", []) for c in report.get("checks", [])}
    row["causes"] = [c["key"] for c in report.get("likely_causes", [])]
    return row


def failed(row: dict) -> list[str]:
    return sorted(i for i, s in row["statuses"].items() if s == "fail")


def verdict(row: dict) -> str:
    if row["error"]:
        return "ERROR"
    if row["expect_fail"]:
        return "ok" if set(row["expect_fail"]) <= set(failed(row)) else "MISS"
    return "FA" if failed(row) else "ok"


def share(part: int, whole: int) -> str:
    return f"{part}/{whole}" + (f" ({part / whole:.0%})" if whole else "")


def report_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        detail = r["error"] or f"fails: {', '.join(failed(r)) or '-'}; top cause: {(r['causes'] or ['-'])[0]}"
        lines.append(f"{verdict(r):5} {r['script']:45} {r['seconds']:6.1f} s  {detail}")
    ran = [r for r in rows if not r["error"]]
    broken = [r for r in ran if r["expect_fail"]]
    sound = [r for r in ran if not r["expect_fail"]]
    with_cause = [r for r in broken if r["expect_cause"]]
    lines += [
        "",
        f"scripts run: {len(ran)}/{len(rows)}" + (f" ({len(rows) - len(ran)} errors)" if len(ran) < len(rows) else ""),
        f"detection (all EXPECT_FAIL ids failed): {share(sum(verdict(r) == 'ok' for r in broken), len(broken))}",
        f"detection (any EXPECT_FAIL id failed):  {share(sum(bool(set(r['expect_fail']) & set(failed(r))) for r in broken), len(broken))}",
        f"false alarms (sound scripts with a fail): {share(sum(bool(failed(r)) for r in sound), len(sound))}",
        f"likely cause first: {share(sum(r['causes'][:1] == [r['expect_cause']] for r in with_cause), len(with_cause))}",
    ]
    if ran:
        seconds = [r["seconds"] for r in ran]
        lines.append(f"time per script: mean {statistics.mean(seconds):.1f} s, median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--only", help="run only scripts whose file name contains this substring")
    parser.add_argument("--jobs", type=int, default=1, help="scripts run at a time, each in its own process")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimizer steps nndoctor observes")
    parser.add_argument("--json", type=Path, help="write the raw per-script results to this file")
    args = parser.parse_args(argv)
    paths = discover(args.only)
    rows = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for row in pool.map(lambda p: run_nndoctor(p, args.steps), paths):
            print(f"{verdict(row):5} {row['script']}", file=sys.stderr, flush=True)
            rows.append(row)
            if row["error"].startswith("no `nndoctor run`"):
                print("nndoctor has no `run` command here (it is being built on branch issue12-run); nothing to measure.")
                return 0
    print("\n".join(report_lines(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
