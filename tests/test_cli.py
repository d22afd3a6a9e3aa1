"""The `nndoctor` command end to end: exit codes, output formats and streams, on real model files.

Most runs go through typer's CliRunner in-process (fast: torch is imported once); the few
properties that only a real process shows (what gets imported, the real exit status, stdout
holding nothing but JSON) run in a subprocess.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from nndoctor import catalog
from nndoctor.cli import app
from nndoctor.result import Finding, PlotData, Status

STATUSES = {s.value for s in Status}

# A 4-class MLP on balanced, standardized Gaussian blobs. SCALE multiplies the final layer's weights:
# 1 is a sound model; 100 makes it confidently wrong at init, which initial_loss must fail.
MLP_MODEL = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        model[-1].weight.mul_(SCALE)
    return model


def build_dataset():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(256) % 4
    x = torch.randn(256, 16, generator=generator) + torch.randn(4, 16, generator=generator)[labels]
    return TensorDataset((x - x.mean(0)) / x.std(0), labels)


loss_fn = nn.CrossEntropyLoss()
'''

# Label leakage: the inputs are the one-hot labels and the model starts as the identity that reads
# them off, so the loss at init is far below chance: initial_loss warns ("too good to be true").
LEAKY_MODEL = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def build_model():
    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4) * 10)
        model.bias.zero_()
    return model


def build_dataset():
    labels = torch.arange(256) % 4
    return TensorDataset(nn.functional.one_hot(labels, 4).float(), labels)


loss_fn = nn.CrossEntropyLoss()
'''


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.fixture
def sound_model(tmp_path: Path) -> Path:
    return _write(tmp_path, "sound_model.py", MLP_MODEL.replace("SCALE", "1.0"))


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    return _write(tmp_path, "broken_model.py", MLP_MODEL.replace("SCALE", "100.0"))


@pytest.fixture
def leaky_model(tmp_path: Path) -> Path:
    return _write(tmp_path, "leaky_model.py", LEAKY_MODEL)


def invoke(*args):
    """Run `nndoctor ARGS` in-process on an 80-column terminal; stdout and stderr kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80"}, catch_exceptions=False)


def flat(text: str) -> str:
    """Terminal text with its line wrapping undone, for phrase assertions."""
    return " ".join(text.split())


def _fake_check(monkeypatch, check_id: str, run) -> None:
    """Install ``run`` as the module of catalog check ``check_id`` for this test only, so that
    the CLI's isolation and plotting can be tested whatever the real check does."""
    name = f"nndoctor.checks.{check_id}"
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    module.run = run
    monkeypatch.setitem(sys.modules, name, module)


def _without_durations(value):
    if isinstance(value, dict):
        return {k: _without_durations(v) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, list):
        return [_without_durations(v) for v in value]
    return value


# --- exit codes ----------------------------------------------------------------------------


def test_sound_model_exits_0_with_the_figures_in_the_terminal_report(sound_model):
    result = invoke("check", sound_model, "--only", "initial_loss")
    assert result.exit_code == 0, result.output
    assert "Loss" in result.stdout.splitlines()  # the article's section heading
    assert "PASS initial_loss initial loss 1.4" in flat(result.stdout)
    assert "expected ln(4) = 1.39" in flat(result.stdout)
    assert "nndoctor: PASSED — 1 pass" in result.stderr
    assert "nndoctor:" not in result.stdout  # the summary line goes to stderr only


def test_broken_model_exits_1_with_evidence_and_fix(broken_model):
    result = invoke("check", broken_model, "--only", "initial_loss")
    assert result.exit_code == 1, result.output
    assert "FAIL initial_loss" in flat(result.stdout) and "confidently wrong" in flat(result.stdout)
    assert "fix: Shrink the final layer" in flat(result.stdout)
    assert "nndoctor: FAILED — 1 fail" in result.stderr


def test_fail_on_warn_turns_a_warning_into_exit_1(leaky_model):
    default = invoke("check", leaky_model, "--only", "initial_loss")
    assert default.exit_code == 0, default.output
    assert "WARN initial_loss" in flat(default.stdout) and "suspiciously low" in flat(default.stdout)
    strict = invoke("check", leaky_model, "--only", "initial_loss", "--fail-on", "warn")
    assert strict.exit_code == 1
    assert "nndoctor: FAILED — 1 warn" in strict.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--only", "initial_loss,no_such_check"], "no_such_check"),
        (["--skip", "typo_check"], "typo_check"),
        (["--device", "tpu"], "--device"),
        (["--json", "-", "--report", "-"], "both ask for stdout"),
    ],
)
def test_unusable_options_exit_2_before_running(sound_model, extra, message):
    result = invoke("check", sound_model, *extra)
    assert result.exit_code == 2
    assert message in flat(result.stderr)
    assert result.stdout == ""


def test_unknown_check_id_lists_the_valid_ones(sound_model):
    result = invoke("check", sound_model, "--only", "intial_loss")
    assert result.exit_code == 2
    for check_id in catalog.catalog_ids():
        assert check_id in flat(result.stderr)


def test_output_paths_of_the_wrong_kind_are_rejected_up_front(sound_model, tmp_path):
    for option, path, message in (("--report", tmp_path, "is a folder"), ("--plots", sound_model, "is a file")):
        result = invoke("check", sound_model, "--only", "initial_loss", option, path)
        assert result.exit_code == 2
        assert message in flat(result.stderr) and result.stdout == ""


@pytest.mark.parametrize("other_status, exit_code", [(Status.PASS, 0), (Status.FAIL, 1)])
def test_a_crashing_check_is_an_error_result_and_does_not_decide_the_exit_code(
    sound_model, tmp_path, monkeypatch, other_status, exit_code
):
    from nndoctor.checks import initial_loss

    def crash(ctx, thresholds):
        raise RuntimeError("probe exploded [boom]")

    monkeypatch.setattr(initial_loss, "run", crash)
    _fake_check(monkeypatch, "numerics", lambda ctx, thresholds: Finding(other_status, "stand-in verdict"))
    out = tmp_path / "report.json"
    result = invoke("check", sound_model, "--only", "initial_loss,numerics", "--json", out)
    assert result.exit_code == exit_code, result.output
    assert "ERROR initial_loss" in flat(result.stdout) and "probe exploded [boom]" in flat(result.stdout)
    checks = {c["id"]: c for c in json.loads(out.read_text())["checks"]}
    assert checks["initial_loss"]["status"] == "error"
    assert "RuntimeError: probe exploded" in checks["initial_loss"]["error"]
    assert checks["numerics"]["status"] == other_status.value  # the other check still ran


# --- output formats ------------------------------------------------------------------------


def test_json_and_markdown_files(broken_model, tmp_path):
    json_path, md_path = tmp_path / "out" / "report.json", tmp_path / "out" / "report.md"
    result = invoke("check", broken_model, "--only", "initial_loss", "--json", json_path, "--report", md_path)
    assert result.exit_code == 1

    def no_nan(constant):
        raise AssertionError(f"{constant} is not valid JSON")

    data = json.loads(json_path.read_text(), parse_constant=no_nan)
    assert data["schema_version"] == 1
    assert data["status"] == "fail" and data["passed"] is False
    assert data["counts"]["fail"] == 1
    (check,) = data["checks"]
    assert {"id", "status", "summary", "metrics", "fix", "evidence", "tables", "error"} <= set(check)
    assert check["id"] == "initial_loss" and check["status"] in STATUSES
    assert check["metrics"]["ratio"] > 2 and check["fix"].startswith("Shrink")

    markdown = md_path.read_text()
    assert "| status | check | section | result |" in markdown
    assert "| ❌ FAIL | `initial_loss` | Loss |" in markdown
    assert "## Loss" in markdown and "**Fix:** Shrink the final layer" in markdown
    assert "## Not automated (check by hand)" in markdown


def test_json_to_stdout_replaces_the_terminal_report(broken_model):
    result = invoke("check", broken_model, "--only", "initial_loss", "--json", "-")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["checks"][0]["status"] == "fail"  # stdout is JSON only
    assert "nndoctor: FAILED" in result.stderr


def test_markdown_to_stdout_replaces_the_terminal_report(sound_model):
    result = invoke("check", sound_model, "--only", "initial_loss", "--report", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("# nndoctor report")
    assert "nndoctor check" not in result.stdout  # no terminal report mixed in


def _plotting_check(ctx, thresholds):
    curve = PlotData("loss curve", "Loss per step", "step", "loss", (("loss", (0, 1, 2), (2.3, 1.1, 0.4)),))
    return Finding(Status.PASS, "drew a curve", plots=(curve,))


@pytest.mark.parametrize("report_arg", ["reports/run.md", "-"])
def test_plot_links_are_relative_to_the_markdown_file(sound_model, tmp_path, monkeypatch, report_arg):
    _fake_check(monkeypatch, "gradient_flow", _plotting_check)
    monkeypatch.chdir(tmp_path)
    result = invoke("check", sound_model, "--only", "gradient_flow", "--plots", "plots", "--report", report_arg)
    assert result.exit_code == 0, result.output
    markdown = result.stdout if report_arg == "-" else (tmp_path / report_arg).read_text()
    markdown_folder = tmp_path / Path(report_arg).parent
    link = markdown.split("![Loss per step](", 1)[1].split(")", 1)[0]
    assert not Path(link).is_absolute()
    assert link == ("plots/loss_curve.png" if report_arg == "-" else "../plots/loss_curve.png")
    assert (markdown_folder / link).is_file()


# --- list, explain, --help -----------------------------------------------------------------


def test_list_shows_every_catalog_check_within_80_columns():
    result = invoke("list")
    assert result.exit_code == 0
    for spec in catalog.load_catalog():
        assert spec.id in result.stdout
        assert spec.section in result.stdout
    assert all(cell_len(line) <= 80 for line in result.stdout.splitlines())


def test_explain_shows_the_thresholds():
    result = invoke("explain", "initial_loss")
    assert result.exit_code == 0
    lines = [flat(line) for line in result.stdout.splitlines()]
    for key, value in catalog.get_spec("initial_loss").thresholds.items():
        assert f"{key} {value}" in lines
    assert "checks: thresholds: initial_loss" in flat(result.stdout)


def test_explain_unknown_id_exits_2():
    result = invoke("explain", "no_such_check")
    assert result.exit_code == 2
    assert "initial_loss" in flat(result.stderr)


@pytest.mark.parametrize("command", [["--help"], ["check", "--help"], ["list"]])
def test_help_and_list_do_not_import_torch(command):
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nndoctor", *command], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stderr
    import_lines = [line for line in process.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in import_lines}
    heavy = {name for name in imported if name.split(".")[0] in ("torch", "numpy", "matplotlib")}
    assert not heavy, sorted(heavy)[:5]


def test_same_seed_same_verdicts_and_metrics_in_process_and_in_a_real_process(broken_model):
    """Every implemented check but the training runs (--quick, and overfit_small_batch: seconds
    per run), once in-process and once in a real process with another hash seed (so set orders
    differ): identical JSON but for timings. The real process also shows its true exit status
    and a stdout that holds the JSON alone."""
    args = ["check", str(broken_model), "--quick", "--skip", "overfit_small_batch", "--seed", "3", "--device", "cpu",
            "--json", "-"]
    in_process = invoke(*args)
    process = subprocess.run(
        [sys.executable, "-m", "nndoctor", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert process.returncode == in_process.exit_code == 1, process.stderr
    assert "nndoctor: FAILED" in process.stderr
    first, second = (_without_durations(json.loads(out)) for out in (in_process.stdout, process.stdout))
    assert len(first["checks"]) > 1
    assert first == second
