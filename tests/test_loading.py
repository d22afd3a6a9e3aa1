"""The model-file contract and bad input, through the CLI: unusable input exits 2 with one
paragraph and no traceback (--debug shows the traceback); the user's objects are never changed."""

from __future__ import annotations

import textwrap
import traceback
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from nndoctor import api, engine
from nndoctor.options import RunOptions
from nndoctor.cli import app
from nndoctor.config import Config
from nndoctor.errors import InputError
from nndoctor.loading import load_subject

HEADER = """\
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset
"""

# A sound classifier: 64 samples of 6 features, 3 classes. Tests append or replace pieces.
MLP = "nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))"
BLOBS = """
def build_dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    return TensorDataset(x, x[:, :3].argmax(dim=1))
"""
SOUND = f"""
def build_model():
    return {MLP}
{BLOBS}
loss_fn = nn.CrossEntropyLoss()
"""


def write_model(folder: Path, *parts: str, config: str | None = None) -> Path:
    """model.py (HEADER + the parts, each dedented) and, when given, an nndoctor.yaml beside it."""
    path = folder / "model.py"
    path.write_text(HEADER + "".join(textwrap.dedent(part) for part in parts), encoding="utf-8")
    if config is not None:
        (folder / "nndoctor.yaml").write_text(textwrap.dedent(config), encoding="utf-8")
    return path


def check(*args: str):
    return CliRunner().invoke(app, ["check", *map(str, args), "--device", "cpu"])


def assert_bad_input(result, *words: str) -> None:
    """Exit 2 and one paragraph (no blank line, no traceback) containing every word."""
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # the terminal wraps long lines
    assert "Traceback" not in result.output and "\n\n" not in result.output.strip()
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


def run_report(model_path: Path):
    return engine.run_path(model_path, options=RunOptions(only=("initial_loss",), device="cpu"))


# --- bad input: exit 2, one paragraph ---------------------------------------------------------


def test_missing_model_file(tmp_path):
    assert_bad_input(check(tmp_path / "nope.py"), "nope.py does not exist")


def test_syntax_error_names_the_line(tmp_path):
    path = write_model(tmp_path, "\ndef build_model(:\n    pass\n")
    assert_bad_input(check(path), "syntax error at line 5", "def build_model(:")


def test_import_error_names_the_line(tmp_path):
    path = write_model(tmp_path, "import not_a_module_anywhere\n")
    assert_bad_input(check(path), "ModuleNotFoundError", "At line 4", "not_a_module_anywhere")


def test_no_model_lists_the_names_looked_for(tmp_path):
    path = write_model(tmp_path, BLOBS)
    assert_bad_input(check(path), "defines no model", "build_model()", "get_model()", "`model`")


def test_build_model_returning_something_else(tmp_path):
    path = write_model(tmp_path, "def build_model():\n    return [nn.Linear(2, 2)]\n" + BLOBS)
    assert_bad_input(check(path), "build_model gave a list, not a torch.nn.Module")


def test_no_dataset_suggests_a_data_spec(tmp_path):
    path = write_model(tmp_path, f"model = {MLP}\n")
    assert_bad_input(check(path), "defines no dataset", "build_dataset()", "--data")


def test_dataset_items_that_are_not_pairs(tmp_path):
    path = write_model(tmp_path, f"""
        def build_model():
            return {MLP}

        def build_dataset():
            return TensorDataset(torch.randn(16, 6))  # inputs only, no targets
    """)
    assert_bad_input(check(path), "item 0 is a tuple of length 1", "(input, target) pairs")


def test_data_spec_items_that_are_not_pairs_name_the_config(tmp_path):
    (tmp_path / "data.py").write_text(HEADER + "def inputs_only():\n    return TensorDataset(torch.randn(16, 6))\n")
    write_model(tmp_path, f"model = {MLP}\n", config="model: model.py\ndata: {kind: factory, factory: data.py:inputs_only}\n")
    config = tmp_path / "nndoctor.yaml"
    assert_bad_input(check(config), f"Config {config} (data:): dataset item 0 is a tuple of length 1")


def test_forward_error_shows_the_error_and_the_input_shape(tmp_path):
    path = write_model(tmp_path, f"""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = {MLP}

            def forward(self, x):
                raise ValueError("expected images, got " + str(x.dim()) + "-d input")

        def build_model():
            return Net()
    """, BLOBS)
    assert_bad_input(check(path), "forward raised ValueError on the first batch", "input tensor (8, 6) float32", "expected images, got 2-d input", "At line 11")


def test_loss_that_does_not_fit_the_output(tmp_path):
    path = write_model(tmp_path, SOUND + "loss_fn = nn.BCEWithLogitsLoss()\n")
    assert_bad_input(check(path), "the loss (BCEWithLogitsLoss) raised ValueError", "Model output (8, 3)", "target tensor (8,) int64")


CONFIG_ERRORS = [
    ("bad_yaml", "model: model.py\nchecks: {skip: [a\n", "is not valid YAML at line"),
    ("unknown_key", "model: model.py\ntresholds: {}\n", "unknown key(s) tresholds"),
    ("unknown_check_in_skip", "model: model.py\nchecks:\n  skip: [initial_los]\n", "unknown check id(s) initial_los"),
    ("unknown_threshold", "model: model.py\nchecks:\n  thresholds:\n    initial_loss: {fail_ration: 3}\n", "initial_loss has no threshold fail_ration"),
    ("bad_task", "model: model.py\ntask: ranking\n", "task must be one of classification"),
    ("no_model", "seed: 1\n", "names no model file"),
    ("bad_data_spec", "model: model.py\ndata: {kind: tensors, path: gone.pt}\n", "(data:): path: gone.pt is not an existing file"),
]


@pytest.mark.parametrize("config, words", [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS])
def test_invalid_config(tmp_path, config, words):
    write_model(tmp_path, SOUND, config=config)
    assert_bad_input(check(tmp_path / "nndoctor.yaml"), str(tmp_path / "nndoctor.yaml"), words)


def test_config_beside_model_is_validated_too(tmp_path):
    path = write_model(tmp_path, SOUND, config="model: model.py\nchecks: {only: [not_a_check]}\n")
    assert_bad_input(check(path), "unknown check id(s) not_a_check")


def test_unreadable_config(tmp_path):
    write_model(tmp_path, SOUND)
    (tmp_path / "nndoctor.yaml").write_bytes(b"model: \xff\xfe model.py\n")
    assert_bad_input(check(tmp_path / "nndoctor.yaml"), "cannot be read")


def test_unknown_check_on_the_command_line(tmp_path):
    path = write_model(tmp_path, SOUND)
    assert_bad_input(check(path, "--skip", "initial_loss,nonsense"), "unknown check id(s) nonsense")


def test_debug_raises_with_the_traceback_instead(tmp_path):
    path = write_model(tmp_path, SOUND.replace("def build_model():", "def build_model():\n    1 / 0"))
    plain = check(path)
    assert_bad_input(plain, "build_model() raised ZeroDivisionError", "At line")
    debug = check(path, "--debug")
    assert isinstance(debug.exception, InputError)
    trace = "".join(traceback.format_exception(*debug.exc_info))
    assert "Traceback" in trace and str(path) in trace and "1 / 0" in trace


# --- the model-file contract -------------------------------------------------------------------


def test_sound_model_file_passes(tmp_path):
    result = check(write_model(tmp_path, SOUND), "--only", "initial_loss")
    assert result.exit_code == 0, result.output


def test_get_model_and_module_level_model_and_dataset(tmp_path):
    path = write_model(tmp_path, f"""
        def get_model():
            return {MLP}

        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 6, generator=g)
        dataset = TensorDataset(x, x[:, :3].argmax(dim=1))
    """)
    assert check(path, "--only", "initial_loss").exit_code == 0
    path = write_model(tmp_path, f"model = {MLP}\n" + BLOBS)
    assert check(path, "--only", "initial_loss").exit_code == 0


def test_folder_and_config_as_the_target(tmp_path):
    write_model(tmp_path, SOUND, config="model: model.py\nchecks: {only: [initial_loss]}\n")
    assert check(tmp_path).exit_code == 0
    assert check(tmp_path / "nndoctor.yaml").exit_code == 0


def test_task_declared_in_model_file_is_used(tmp_path):
    # 0/1 float targets and one output would be inferred as binary: the declaration wins.
    path = write_model(tmp_path, """
        task = "regression"

        def build_model():
            return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))

        def build_dataset():
            x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
            return TensorDataset(x, (x[:, :1] > 0).float())
    """)
    report = run_report(path)
    assert (report.task, report.task_source) == ("regression", "declared")
    assert "Loss: MSELoss (default for regression)" in " ".join(report.notes)


@pytest.mark.parametrize(
    "loss, targets, output_width, task, because",
    [
        ("", "x[:, :3].argmax(dim=1)", 3, "classification", "inferred from integer targets"),
        ("loss_fn = nn.BCEWithLogitsLoss()", "(x[:, :3] > 0).float()", 3, "multilabel", "inferred from BCEWithLogitsLoss and output width 3"),
        ("", "(x[:, :1] > 0).float()", 1, "binary", "inferred from 0/1 targets and one output"),
        ("loss_fn = nn.L1Loss()", "x[:, :2] * 3", 2, "regression", "inferred from L1Loss"),
    ],
    ids=["integer_targets", "bce_multilabel", "binary_targets", "l1_regression"],
)
def test_inferred_task_is_stated_in_the_notes(tmp_path, loss, targets, output_width, task, because):
    path = write_model(tmp_path, f"""
        def build_model():
            return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, {output_width}))

        def build_dataset():
            x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
            return TensorDataset(x, {targets})

        {loss}
    """)
    report = run_report(path)
    assert report.task == task
    assert f"Task: {task} ({because})." in report.notes


def test_loss_fn_as_a_plain_function(tmp_path):
    path = write_model(tmp_path, SOUND.replace("loss_fn = nn.CrossEntropyLoss()", """
def loss_fn(output, target):
    return nn.functional.cross_entropy(output, target)
"""))
    report = run_report(path)
    result = report.result("initial_loss")
    assert result.error is None and result.status.value == "pass", result.summary
    assert any(note.startswith("Loss: loss_fn (model file)") for note in report.notes)


def test_build_optimizer_is_used(tmp_path):
    path = write_model(tmp_path, SOUND + """
def build_optimizer(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)
""")
    subject = load_subject(path, Config(), device="cpu")
    optimizer = subject.make_optimizer(subject.fresh_model().parameters())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.05
    assert "Optimizer: model file (build_optimizer)" in " ".join(run_report(path).notes)


def test_config_optimizer_and_loss_override_the_model_file(tmp_path):
    write_model(tmp_path, SOUND, config="model: model.py\nloss: {name: CrossEntropyLoss, label_smoothing: 0.1}\noptimizer: {name: SGD, lr: 0.2}\n")
    subject = load_subject(tmp_path / "model.py", engine.resolve_config(tmp_path / "nndoctor.yaml", None, None)[1], device="cpu")
    assert subject.loss_fn.label_smoothing == 0.1
    assert subject.make_optimizer(subject.fresh_model().parameters()).defaults["lr"] == 0.2


class BatchNormNet(nn.Module):
    """BatchNorm running statistics and Dropout: a model whose state a careless forward changes."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))

    def forward(self, x):
        return self.body(x)


def fast_adam(params):
    return torch.optim.Adam(params, lr=1e-2)


def test_user_model_and_dataset_are_unchanged_by_a_full_run():
    torch.manual_seed(0)
    model = BatchNormNet().eval()
    x = torch.randn(96, 6)
    dataset = TensorDataset(x, x[:, :3].argmax(dim=1))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    data = [t.clone() for t in dataset.tensors]
    # Every implemented check runs (the quick set); Adam at 1e-2 keeps the overfit run short.
    report = api.check(model, dataset, nn.CrossEntropyLoss(), optimizer=fast_adam, device="cpu", quick=True)
    assert report.results
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(data, dataset.tensors))
    assert not model.training and all(p.grad is None for p in model.parameters())
