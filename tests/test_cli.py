"""The `nndoctor` command end to end: exit codes, output formats and streams, on real model files.

Most runs go through typer's CliRunner in-process (fast: torch is imported once); the few
properties that only a real process shows (what gets imported, the real exit status, stdout
holding nothing but JSON) run in a subprocess.
"""

from __future__ import annotations

import importlib.machinery
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from nndoctor import catalog
from nndoctor.cli import app
from nndoctor.result import Finding, PlotData, Status, Table

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


def invoke(*args, env=None):
    """Run `nndoctor ARGS` in-process on an 80-column terminal; stdout and stderr kept apart.
    The CI variables are cleared (None unsets), so that the suite behaves the same in a CI job."""
    env = {"COLUMNS": "80", "CI": None, "GITHUB_ACTIONS": None, **(env or {})}
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


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
        (["--format", "json", "--junit", "-"], "--junit - and --format json both ask for stdout"),
        (["--quiet", "--verbose"], "contradict"),
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
    for option, path, message in (
        ("--report", tmp_path, "is a folder"), ("--junit", tmp_path, "is a folder"), ("--plots", sound_model, "is a file")
    ):
        result = invoke("check", sound_model, "--only", "initial_loss", option, path)
        assert result.exit_code == 2
        assert message in flat(result.stderr) and result.stdout == ""


@pytest.mark.parametrize("other_status, options, exit_code, verdict", [
    (Status.PASS, (), 3, "INCOMPLETE"),  # never PASSED about a check that could not run
    (Status.PASS, ("--allow-errors",), 0, "PASSED"),
    (Status.FAIL, (), 1, "FAILED"),  # a finding stands even when another check crashed
])
def test_a_crashing_check_is_an_error_result_and_the_run_is_incomplete(
    sound_model, tmp_path, monkeypatch, other_status, options, exit_code, verdict
):
    from nndoctor.checks import initial_loss

    def crash(ctx, thresholds):
        raise RuntimeError("probe exploded [boom]")

    monkeypatch.setattr(initial_loss, "run", crash)
    _fake_check(monkeypatch, "numerics", lambda ctx, thresholds: Finding(other_status, "stand-in verdict"))
    out = tmp_path / "report.json"
    result = invoke("check", sound_model, "--only", "initial_loss,numerics", "--json", out, *options)
    assert result.exit_code == exit_code, result.output
    assert "ERROR initial_loss" in flat(result.stdout) and "probe exploded [boom]" in flat(result.stdout)
    assert f"nndoctor: {verdict}" in flat(result.stderr)
    document = json.loads(out.read_text())
    assert document["verdict"] == verdict
    checks = {c["id"]: c for c in document["checks"]}
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


# --- CI outputs: JUnit, GitHub Actions annotations ------------------------------------------


def test_junit_file_beside_the_terminal_report(broken_model, tmp_path):
    junit_path = tmp_path / "reports" / "nndoctor.xml"
    result = invoke("check", broken_model, "--only", "initial_loss,data_integrity,class_balance",
                    "--skip", "class_balance", "--junit", junit_path)
    assert result.exit_code == 1
    assert "FAIL initial_loss" in flat(result.stdout)  # the terminal report is still there
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    cases = {case.get("name").split(":")[0]: case for case in suite.iter("testcase")}
    assert cases["initial_loss"].get("classname") == "Loss"
    failure = cases["initial_loss"].find("failure")
    assert "confidently wrong" in failure.get("message")
    assert "Fix: Shrink the final layer" in failure.text
    assert cases["class_balance"].find("skipped") is not None


def test_junit_to_stdout_is_xml_alone(sound_model):
    result = invoke("check", sound_model, "--only", "initial_loss", "--format", "junit")
    assert result.exit_code == 0
    suite = ET.fromstring(result.stdout.encode()).find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    assert "nndoctor: PASSED" in result.stderr


def test_github_actions_adds_annotations_after_the_terminal_report(broken_model):
    result = invoke("check", broken_model, "--only", "initial_loss", env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "FAIL initial_loss" in flat(result.stdout)
    assert lines[-1].startswith("::error title=nndoctor initial_loss%3A ")
    assert "— fix: Shrink the final layer" in lines[-1]
    assert sum(line.startswith("::") for line in lines) == 1


def test_github_actions_annotations_go_to_stderr_when_stdout_holds_json(broken_model):
    result = invoke("check", broken_model, "--only", "initial_loss", "--json", "-", env={"GITHUB_ACTIONS": "true"})
    assert json.loads(result.stdout)["status"] == "fail"
    assert "::error title=nndoctor initial_loss%3A " in result.stderr


@pytest.mark.parametrize("fail_on, level, exit_code", [("fail", "warning", 0), ("warn", "error", 1)])
def test_format_github_prints_the_annotations_alone(leaky_model, fail_on, level, exit_code):
    result = invoke("check", leaky_model, "--only", "initial_loss", "--format", "github", "--fail-on", fail_on)
    assert result.exit_code == exit_code
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"::{level} title=nndoctor initial_loss%3A ") and "suspiciously low" in line


def test_explicit_terminal_format_turns_the_annotations_off(broken_model):
    result = invoke("check", broken_model, "--only", "initial_loss", "--format", "terminal",
                    env={"GITHUB_ACTIONS": "true"})
    assert "FAIL initial_loss" in flat(result.stdout) and "::error" not in result.output


# --- noise: --quiet, --verbose, progress ---------------------------------------------------


def _passing_with_details(ctx, thresholds):
    table = Table("per-layer detail", ("layer", "value"), (("encoder.layers.3.linear1", 0.5),))
    return Finding(Status.PASS, "all layers fine", evidence=("encoder.layers.3.linear1: value 0.5",), tables=(table,))


def test_quiet_prints_only_the_failing_checks_and_the_summary_and_still_writes_files(broken_model, tmp_path):
    out = tmp_path / "report.json"
    result = invoke("check", broken_model, "--only", "initial_loss,data_integrity", "--quiet", "--json", out)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert flat(lines[0]).startswith("FAIL initial_loss initial loss")
    assert "data_integrity" not in result.stderr  # passing checks are not named
    assert lines[-1].startswith("nndoctor: FAILED — 1 fail, 1 pass")
    assert json.loads(out.read_text())["counts"]["fail"] == 1


def test_quiet_on_a_passing_run_is_one_line(sound_model):
    result = invoke("check", sound_model, "--only", "initial_loss", "-q")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("nndoctor: PASSED — 1 pass")


def test_verbose_details_passing_checks_and_times_each_check(sound_model, monkeypatch):
    _fake_check(monkeypatch, "numerics", _passing_with_details)
    default = invoke("check", sound_model, "--only", "numerics")
    assert "PASS numerics all layers fine" in flat(default.stdout)
    assert "encoder.layers.3.linear1" not in default.stdout

    verbose = invoke("check", sound_model, "--only", "numerics", "--verbose")
    assert verbose.exit_code == 0
    assert "· encoder.layers.3.linear1: value 0.5" in flat(verbose.stdout)
    assert "per-layer detail" in verbose.stdout
    status_line = next(line for line in verbose.stdout.splitlines() if "PASS" in line)
    assert re.search(r"\d+\.\d\ds$", status_line.rstrip())


@pytest.mark.parametrize(
    "tty, env, quiet, shown",
    [
        (True, {}, False, True),
        (False, {}, False, False),  # piped or redirected
        (True, {"CI": "true"}, False, False),
        (True, {"GITHUB_ACTIONS": "true"}, False, False),
        (True, {"CI": "false"}, False, True),
        (True, {}, True, False),
    ],
)
def test_progress_only_for_a_person_at_a_terminal(monkeypatch, tty, env, quiet, shown):
    from nndoctor import cli

    for name in ("CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert cli._show_progress(quiet) is shown


def test_progress_names_the_running_check_and_leaves_no_trace():
    from nndoctor.report import terminal

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80)
    with terminal.progress(True, console) as on_start:
        on_start(catalog.get_spec("initial_loss"))
    shown = buffer.getvalue()
    assert f"check 1 · initial_loss: {catalog.get_spec('initial_loss').title}" in shown
    assert shown.endswith("\x1b[1A\x1b[2K")  # at the end the cursor goes back up and erases the line
    with terminal.progress(False) as disabled:
        assert disabled is None


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


def test_explain_suggests_the_id_a_typo_meant():
    result = invoke("explain", "intial_loss")
    assert result.exit_code == 2
    assert "did you mean initial_loss?" in flat(result.stderr)


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


def test_checks_that_cannot_run_on_data_that_failed_integrity_are_skipped_not_errors():
    """Labels beyond the output width make the loss raise in every training check: the report
    names the data as the cause (data_integrity fail) and skips the rest instead of 'crashing'."""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from nndoctor import api
    from nndoctor.result import Status

    x = torch.randn(64, 6)
    y = torch.arange(64) % 4 + 1  # labels 1..4 for a 4-way head: off by one
    report = api.check(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)), TensorDataset(x, y),
                       loss_fn=nn.CrossEntropyLoss(), device="cpu",
                       only=["data_integrity", "initial_loss", "gradient_flow"])
    assert report.result("data_integrity").status is Status.FAIL
    for check_id in ("initial_loss", "gradient_flow"):
        result = report.result(check_id)
        assert result.status is Status.SKIP, result.summary
        assert "data_integrity" in result.summary


def test_version_short_help_and_usage_without_a_path():
    from nndoctor import __version__

    assert invoke("--version").stdout.strip() == f"nndoctor {__version__}"
    assert "Run the checklist" in invoke("check", "-h").stdout
    bare = invoke("check")
    assert "Usage:" in bare.output and "Traceback" not in bare.output
