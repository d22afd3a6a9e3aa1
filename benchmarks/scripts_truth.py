"""Ground truth for the scripts corpus, measured without nndoctor: run every script in
benchmarks/scripts/ plainly (`python SCRIPT`, one torch thread) to its natural end and check that the
broken ones really do not learn and the sound ones really do.

    python benchmarks/scripts_truth.py                 # every script
    python benchmarks/scripts_truth.py --only frozen   # scripts whose file name contains "frozen"
    python benchmarks/scripts_truth.py --jobs 2

Every script ends by printing one line `NAME SCORE (... baseline BASELINE)`: a held-out score in [0, 1],
higher is better (accuracy for the classifiers), beside what a model that learned nothing gets (the
majority class share; for the GAN, the untrained generator's score). A script learned when it closed at
least LEARNED_SHARE of the gap between the baseline and a perfect score. It agrees with its label when
sound scripts learned and broken ones did not. Always exits 0.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "scripts"
LEARNED_SHARE = 0.25  # of the gap from baseline to 1; measured scores sit far from it on both sides
FINAL_LINE = re.compile(r"^(\w+) ([0-9.]+) \(.*baseline ([0-9.]+)\)\s*$", re.M)
TIMEOUT_S = 900


def declared(path: Path, name: str, default: object) -> object:
    """A module-level literal of a script, read without running it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default


def discover(only: str | None) -> list[Path]:
    return [p for p in sorted(SCRIPTS.glob("*.py"))
            if p.stem.startswith(("broken_", "sound_")) and (not only or only in p.stem)]


def measure(path: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        output, error = proc.stdout, (proc.stderr.strip().splitlines() or [""])[-1] if proc.returncode else ""
    except subprocess.TimeoutExpired:
        output, error = "", f"timed out after {TIMEOUT_S} s"
    row = {"script": path.stem, "expect_fail": declared(path, "EXPECT_FAIL", []),
           "seconds": time.perf_counter() - start, "metric": None, "score": None, "baseline": None,
           "learned": None, "error": error}
    found = FINAL_LINE.findall(output)
    if found:
        metric, score, baseline = found[-1]
        row.update(metric=metric, score=float(score), baseline=float(baseline))
        row["learned"] = row["score"] - row["baseline"] >= LEARNED_SHARE * (1 - row["baseline"])
    elif not error:
        row["error"] = "no final `NAME SCORE (... baseline B)` line"
    return row


def agrees(row: dict) -> str:
    if row["learned"] is None:
        return "ERROR"
    return "yes" if row["learned"] == (not row["expect_fail"]) else "NO"


def table(rows: list[dict]) -> list[str]:
    lines = ["| script | label | metric | measured | baseline | learned | agrees | time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = "broken" if r["expect_fail"] else "sound"
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        base = "-" if r["baseline"] is None else f"{r['baseline']:.3f}"
        learned = r["error"] or ("yes" if r["learned"] else "no")
        lines.append(f"| {r['script']} | {label} | {r['metric'] or '-'} | {score} | {base} | {learned} | {agrees(r)} | {r['seconds']:.0f} |")
    agreed = sum(agrees(r) == "yes" for r in rows)
    lines.append(f"\n{agreed}/{len(rows)} scripts agree with their label "
                 f"(learned = closed at least {LEARNED_SHARE:.0%} of the gap from baseline to 1).")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--only", help="run only scripts whose file name contains this substring")
    parser.add_argument("--jobs", type=int, default=1, help="scripts run at a time")
    args = parser.parse_args(argv)
    paths = discover(args.only)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = []
        for row in pool.map(measure, paths):
            print(f"{row['script']}: {agrees(row)}", file=sys.stderr, flush=True)
            rows.append(row)
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
