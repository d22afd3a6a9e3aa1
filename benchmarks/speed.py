"""How fast and how lean is nndoctor? Side by side for a small CNN, ResNet-18 on 32x32 inputs and a
small transformer (the zoo's sound_cnn_batchnorm_dropout, sound_resnet18_32px and
sound_transformer_encoder):

- full: wall time of the full default checklist (nndoctor.check on the model file's objects, cpu,
  seed 0: like the bare loops, it gets the model and data already built);
- steps: the same in units of one bare training step (forward + backward + step, batch 50,
  median of timed steps after warm-up), measured in this run;
- overfit: wall time of a bare PyTorch loop that only overfits the first 50 samples, dropout and
  weight decay off, to the same goal as overfit_small_batch (loss <= 5% of the entropy of the
  50 labels' class prior, accuracy >= 0.98, at most 1000 steps): the irreducible work;
- ratio: full / overfit;
- quick: wall time of `--quick`;
- memory: peak resident memory of the process (ru_maxrss) minus its resident memory just before
  the measured work started (model and data already built, torch and nndoctor's check modules imported), for the full
  checklist and for 20 bare training steps. Each measurement runs in a fresh subprocess, so the
  peaks do not mix;
- help: wall time of `nndoctor --help` (start-up, including imports).

Every measurement first builds one throwaway optimizer: torch imports torch._dynamo lazily on the
first optimizer construction (measured 15 s on a loaded machine), a one-time cost of any training
script that is not nndoctor's to remove.

    python benchmarks/speed.py            # all three models
    python benchmarks/speed.py --only cnn  # one model

Torch runs with one thread (--threads to change): on a shared 2-core machine two threads per
process were measured up to 20x slower than one. Always exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ZOO = Path(__file__).resolve().parent / "zoo"
MODELS = {
    "small_cnn": ZOO / "sound_cnn_batchnorm_dropout.py",
    "resnet18_32px": ZOO / "sound_resnet18_32px.py",
    "transformer": ZOO / "sound_transformer_encoder.py",
}
BATCH = 50
OVERFIT_MAX_STEPS = 1000
TARGETS = "full <= 1.5x overfit (small CNN); full < 60 s (ResNet-18); quick < 5 s (small CNN); peak memory <= 1.5x a bare step"


def rss_now() -> float:
    """Current resident memory in MiB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load(path: Path, with_dataset: bool = False):
    import torch

    from nndoctor.loading import import_model_file

    torch.manual_seed(0)
    module = import_model_file(path)
    model, dataset = module.build_model(), module.build_dataset()
    n = min(BATCH, len(dataset))
    inputs = torch.stack([dataset[i][0] for i in range(n)])
    labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(n)])
    loss_fn = getattr(module, "loss_fn", None) or torch.nn.CrossEntropyLoss()
    make_optimizer = getattr(module, "build_optimizer", None) or (lambda p: torch.optim.Adam(p, lr=1e-3))
    # The first optimizer a process builds imports torch._dynamo (seconds, and tens of MiB): pay it
    # here, outside every timed and memory-measured section, so all measurements compare alike.
    make_optimizer(torch.nn.Linear(1, 1).parameters())
    # nndoctor's own code (every check module and what it imports) is loaded here too: the memory
    # figures compare working memory (tensors, copies, caches), not the size of the code.
    from nndoctor import catalog, runner

    for spec in catalog.load_catalog():
        runner.check_module(spec.id)
    if with_dataset:
        return model, dataset, loss_fn, make_optimizer
    return model, inputs, labels, loss_fn, make_optimizer


def measure_step(path: Path) -> dict:
    model, inputs, labels, loss_fn, make_optimizer = load(path)
    optimizer = make_optimizer(model.parameters())
    before = rss_now()
    times = []
    for _ in range(23):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(inputs), labels).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times[3:]), "peak_mib": peak_rss() - before}


def measure_overfit(path: Path) -> dict:
    import torch

    from nndoctor.training import without_regularization

    model, inputs, labels, loss_fn, make_optimizer = load(path)
    without_regularization(model)
    optimizer = make_optimizer(model.parameters())
    for group in optimizer.param_groups:
        group["weight_decay"] = 0.0
    prior = torch.bincount(labels).float() / len(labels)
    goal = 0.05 * float(-(prior[prior > 0] * prior[prior > 0].log()).sum())
    start = time.perf_counter()
    model.train()
    for step in range(OVERFIT_MAX_STEPS + 1):
        output = model(inputs)
        loss = loss_fn(output, labels)
        accuracy = float((output.argmax(1) == labels).float().mean())
        if float(loss) <= goal and accuracy >= 0.98 or step == OVERFIT_MAX_STEPS:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"overfit_s": time.perf_counter() - start, "overfit_steps": step, "reached": float(loss) <= goal}


def measure_checklist(path: Path, quick: bool) -> dict:
    """The checklist on the objects load() built, as the bare loops get them: model building and
    the model file's import are outside the timed and the memory-measured work for all three."""
    from nndoctor import api

    model, dataset, loss_fn, make_optimizer = load(path, with_dataset=True)
    before = rss_now()
    start = time.perf_counter()
    report = api.check(model, dataset, loss_fn, make_optimizer, seed=0, device="cpu", quick=quick)
    seconds = time.perf_counter() - start
    fails = [r.id for r in report.results if r.status.value == "fail"]
    per_check = {r.id: round(r.duration_s, 2) for r in report.results}
    return {"seconds": seconds, "peak_mib": peak_rss() - before, "fails": fails, "per_check_s": per_check}


def measure_help() -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nndoctor", "--help"], check=True, capture_output=True)
    return {"help_s": time.perf_counter() - start}


def child(kind: str, model: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    path = MODELS.get(model)
    result = {
        "step": lambda: measure_step(path),
        "overfit": lambda: measure_overfit(path),
        "full": lambda: measure_checklist(path, quick=False),
        "quick": lambda: measure_checklist(path, quick=True),
        "help": measure_help,
    }[kind]()
    print(json.dumps(result))


def in_subprocess(kind: str, model: str, threads: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, model, "--threads", str(threads)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nndoctor speed and memory benchmark")
    parser.add_argument("--only", help="models whose name contains this substring")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.threads)
        return 0
    names = [n for n in MODELS if not args.only or args.only in n]
    rows = {}
    for name in names:
        print(f"measuring {name} ...", flush=True)
        rows[name] = {kind: in_subprocess(kind, name, args.threads) for kind in ("step", "overfit", "full", "quick")}
    help_s = in_subprocess("help", "-", args.threads).get("help_s", math.nan)
    print(f"\n{'model':15s} {'step':>8s} {'full':>8s} {'=steps':>7s} {'overfit':>8s} {'(steps)':>7s} {'ratio':>6s} "
          f"{'quick':>7s} {'mem full':>9s} {'mem step':>9s} {'mem ratio':>9s}  full-run fails")
    for name, r in rows.items():
        errors = {k: v["error"] for k, v in r.items() if "error" in v}
        if errors:
            print(f"{name:15s} ERROR {errors}")
            continue
        step, full, over, quick = r["step"], r["full"], r["overfit"], r["quick"]
        print(f"{name:15s} {step['step_s']:7.3f}s {full['seconds']:7.1f}s {full['seconds'] / step['step_s']:7.0f} "
              f"{over['overfit_s']:7.2f}s {over['overfit_steps']:7d} {full['seconds'] / over['overfit_s']:6.1f} "
              f"{quick['seconds']:6.1f}s {full['peak_mib']:8.0f}M {step['peak_mib']:8.0f}M "
              f"{full['peak_mib'] / max(step['peak_mib'], 1):9.1f}  {full['fails'] or '-'}")
    print(f"\nnndoctor --help start-up: {help_s:.2f} s")
    print(f"\ntargets: {TARGETS}")
    cnn, resnet = rows.get("small_cnn"), rows.get("resnet18_32px")
    if cnn and "error" not in cnn["full"]:
        print(f"  full <= 1.5x bare overfit loop (small CNN): {cnn['full']['seconds'] / cnn['overfit']['overfit_s']:.1f}x -> "
              f"{verdict(cnn['full']['seconds'] <= 1.5 * cnn['overfit']['overfit_s'])}")
        print(f"  --quick < 5 s (small CNN): {cnn['quick']['seconds']:.1f} s -> {verdict(cnn['quick']['seconds'] < 5)}")
    if resnet and "error" not in resnet["full"]:
        print(f"  full < 60 s (ResNet-18): {resnet['full']['seconds']:.1f} s -> {verdict(resnet['full']['seconds'] < 60)}")
    for name, r in rows.items():
        if "error" not in r["full"] and "error" not in r["step"]:
            ratio = r["full"]["peak_mib"] / max(r["step"]["peak_mib"], 1)
            print(f"  peak memory <= 1.5x a bare step ({name}): {ratio:.1f}x -> {verdict(ratio <= 1.5)}")
    print("\nslowest checks per model (s):")
    for name, r in rows.items():
        if "per_check_s" in r["full"]:
            slow = sorted(r["full"]["per_check_s"].items(), key=lambda kv: -kv[1])[:6]
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in slow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
