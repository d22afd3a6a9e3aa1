"""What a user gets from `pip install nndoctor`: the checklist YAML inside the wheel, working from
a non-editable install, with the public check ids of the design catalog."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from nndoctor import catalog

ROOT = Path(__file__).resolve().parents[1]

# The ids of the design catalog (shared/design/checklist.md), a public contract: users name them
# in --only/--skip, configs and CI logs, so none may disappear or change section. New checks need
# no entry here: the ids shipped are read from the catalog files themselves (SOURCE_IDS).
CONTRACT = {
    "Inputs": ["data_integrity", "input_normalization", "class_balance", "easy_data"],
    "Model architecture and initialization": ["output_head", "weight_init", "activation_variance", "batch_independence"],
    "Loss": ["initial_loss", "regularization_ratio", "lr_range", "overfit_small_batch"],
    "Activation functions": ["dead_relu", "saturation"],
    "Other tips": ["gradient_flow", "update_ratio", "prediction_collapse", "input_dependence", "numerics"],
}
CONTRACT_IDS = [check_id for ids in CONTRACT.values() for check_id in ids]
SECTION_FILES = {path.name for path in (ROOT / "checks").glob("*.yaml")}
WATCH_FILE = "watch.yaml"  # the watcher's events (nndoctor.watch), not pre-flight checks
SOURCE_IDS = [
    entry["id"] for path in sorted((ROOT / "checks").glob("*.yaml"))
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")).get("checks") or ()  # watch.yaml lists watch events, not checks
]


def test_catalog_keeps_every_contract_id_in_its_section():
    specs = {s.id: s for s in catalog.load_catalog()}
    assert len(CONTRACT_IDS) == 19
    assert set(CONTRACT_IDS) <= set(specs)
    assert {i: specs[i].section for i in CONTRACT_IDS} == {i: section for section, ids in CONTRACT.items() for i in ids}
    assert sorted(specs) == sorted(SOURCE_IDS) and len(SOURCE_IDS) == len(set(SOURCE_IDS))


def _pip(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "10"}
    return subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from this checkout. With hatchling installed the build needs no network
    and must succeed; without it pip fetches hatchling, and the test skips when that is impossible."""
    out = tmp_path_factory.mktemp("wheel")
    offline_build = importlib.util.find_spec("hatchling") is not None
    args = ["wheel", str(ROOT), "--no-deps", "-w", str(out)] + (["--no-build-isolation"] if offline_build else [])
    process = _pip(*args)
    if process.returncode != 0:
        if not offline_build:
            pytest.skip(f"cannot build a wheel without hatchling (offline?): {process.stderr.strip()[-300:]}")
        pytest.fail(f"building the wheel failed:\n{process.stdout[-2000:]}\n{process.stderr[-2000:]}")
    (path,) = out.glob("nndoctor-*.whl")
    return path


def test_wheel_ships_the_checklist_for_all_six_sections(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = {Path(n).name for n in names if n.startswith("nndoctor/_checklist/") and n.endswith(".yaml")}
        assert shipped == SECTION_FILES and WATCH_FILE in shipped
        sections = {
            yaml.safe_load(archive.read(f"nndoctor/_checklist/{name}"))["section"]: name for name in SECTION_FILES - {WATCH_FILE}
        }
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert set(CONTRACT) <= set(sections) == {spec.section for spec in catalog.load_catalog()}
    assert not any(n.startswith(("checks/", "tests/")) for n in names)  # no stray top-level packages
    assert "nndoctor = nndoctor.cli:app" in entry_points


def test_non_editable_install_reads_its_own_checklist(wheel, tmp_path):
    target = tmp_path / "site"
    process = _pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    assert process.returncode == 0, process.stderr
    probe = (
        "import json; from nndoctor import catalog; "
        "print(json.dumps([str(catalog.checklist_dir()), [s.id for s in catalog.load_catalog()]]))"
    )
    # Isolated mode, from an empty folder, with the installed copy first on the path: the source
    # tree's checks/ cannot be what the catalog finds.
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    checklist_dir, ids = json.loads(run.stdout)
    assert Path(checklist_dir) == target / "nndoctor" / "_checklist"
    assert sorted(ids) == sorted(SOURCE_IDS)
