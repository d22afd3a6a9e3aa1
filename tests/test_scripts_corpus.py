"""The scripts corpus (benchmarks/scripts/) declares well-formed expectations: every script names
its label, and every id it expects to fail is a check nndoctor has or one issue 12 specifies for
`nndoctor run`. Whether each script really learns is measured by benchmarks/scripts_truth.py (slow,
not part of the suite)."""

import ast
from pathlib import Path

import yaml

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
CATALOG = Path(__file__).resolve().parent.parent / "checks"
RUN_CHECK_IDS = {"grad_reset", "optimizer_coverage", "train_mode", "lr_schedule", "loss_progress", "label_signal"}


def declarations(path: Path) -> dict:
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("EXPECT_FAIL", "EXPECT_CAUSE"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def catalog_ids() -> set[str]:
    return {entry["id"] for f in CATALOG.glob("*.yaml") for entry in yaml.safe_load(f.read_text()).get("checks") or ()}


def test_every_script_declares_a_label_that_matches_its_name():
    scripts = sorted((BENCHMARKS / "scripts").glob("*.py"))
    assert len(scripts) >= 20
    known = catalog_ids() | RUN_CHECK_IDS
    for path in scripts:
        declared = declarations(path)
        assert set(declared) == {"EXPECT_FAIL", "EXPECT_CAUSE"}, path.name
        assert bool(declared["EXPECT_FAIL"]) == path.stem.startswith("broken_"), path.name
        assert set(declared["EXPECT_FAIL"]) <= known, path.name


def test_truth_line_parser_reads_the_final_score():
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from scripts_truth import FINAL_LINE
    finally:
        sys.path.remove(str(BENCHMARKS))
    output = "epoch 7 loss 0.39 val_acc 0.842\nval_acc 0.842 (majority baseline 0.146)\n"
    assert FINAL_LINE.findall(output) == [("val_acc", "0.842", "0.146")]
