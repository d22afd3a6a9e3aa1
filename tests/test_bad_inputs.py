"""The bad-input corpus: inputs as new users write them, each answered with its documented exit
code and one paragraph naming the file and what to change, never a traceback (issue: a gate that
never lies). Each case is a model file (and sometimes a config) written into a temporary folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tests.test_cli import flat, invoke

BASE = Path(__file__).resolve().parent / "bad_inputs"
HEADER = f"import sys; sys.path.insert(0, {str(BASE)!r})\nfrom _base import *\nimport torch\nfrom torch import nn\n"


def model_file(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


SOUND = """
def build_model():
    return mlp()

def build_dataset():
    return dataset()
"""

# (case id, model file body, extra files {name: text}, arguments after the model path, exit code, phrase)
CASES = [
    ("item raises part-way", """
        class Broken(Wrapped):
            def item(self, i):
                if i == 150:
                    raise ValueError("corrupt record")
                return super().item(i)
        def build_model(): return mlp()
        def build_dataset(): return Broken(400)
        """, {}, ["--quick"], 2, "item 150"),
    ("shapes change part-way", """
        class Changing(Wrapped):
            def item(self, i):
                x, y = super().item(i)
                return (torch.cat([x, x]) if i > 100 else x), y
        def build_model(): return mlp()
        def build_dataset(): return Changing(400)
        """, {}, ["--quick"], 2, "same shape"),
    ("seed: true", SOUND, {"nndoctor.yaml": "seed: true\n"}, [], 2, "seed must be a whole number"),
    ("threshold not a number", SOUND, {"nndoctor.yaml": "checks:\n  thresholds:\n    initial_loss:\n      fail_ratio: high\n"},
     [], 2, "must be a number"),
    ("model without parameters", """
        def build_model(): return nn.ReLU()
        def build_dataset(): return dataset()
        """, {}, [], 2, "no parameters"),
    ("forward raises in train mode only", """
        class EvalOnly(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = mlp()
            def forward(self, x):
                if self.training:
                    raise RuntimeError("not in training")
                return self.net(x)
        def build_model(): return EvalOnly()
        def build_dataset(): return dataset()
        """, {}, [], 2, "train mode"),
    ("sys.exit at import", "sys.exit(0)\n" + SOUND, {}, [], 2, "sys.exit(0)"),
    ("sys.exit in forward", """
        class Exits(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = mlp()
                self.calls = 0
            def forward(self, x):
                self.calls += 1
                if self.calls > 3:
                    sys.exit(1)
                return self.net(x)
        def build_model(): return Exits()
        def build_dataset(): return dataset()
        """, {}, ["--quick"], 2, "sys.exit(1)"),
    ("os._exit in build_model", """
        import os
        def build_model():
            os._exit(0)
        def build_dataset(): return dataset()
        """, {}, [], 2, "sys.exit(0)"),
    ("__len__ raises FileNotFoundError", """
        class Missing(Wrapped):
            def __len__(self):
                raise FileNotFoundError("data/train.csv")
        def build_model(): return mlp()
        def build_dataset(): return Missing()
        """, {}, [], 2, "len(dataset) raised FileNotFoundError"),
    ("__len__ returns -1", """
        class Negative(Wrapped):
            def __len__(self):
                return -1
        def build_model(): return mlp()
        def build_dataset(): return Negative()
        """, {}, [], 2, "Fix the dataset's __len__"),
    ("__len__ raises TypeError", """
        class Typed(Wrapped):
            def __len__(self):
                raise TypeError("no length yet")
        def build_model(): return mlp()
        def build_dataset(): return Typed()
        """, {}, [], 2, "len(dataset) raised TypeError"),
    ("model holds a lock", """
        import threading
        class Locked(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = mlp()
                self.lock = threading.Lock()
            def forward(self, x):
                return self.net(x)
        def build_model(): return Locked()
        def build_dataset(): return dataset()
        """, {}, [], 2, "cannot copy"),
    ("model on the meta device", """
        def build_model():
            with torch.device("meta"):
                return mlp()
        def build_dataset(): return dataset()
        """, {}, [], 2, "meta device"),
    ("config model: 5", SOUND, {"nndoctor.yaml": "model: 5\n"}, [], 2, "model: must be the path"),
    ("config thresholds: a list", SOUND, {"nndoctor.yaml": "checks:\n  thresholds: [1, 2]\n"}, [], 2, "thresholds: must map"),
    ("seed out of range", SOUND, {}, ["--seed", "99999999999999999999"], 2, "--seed must be a whole number"),
    ("build_dataset returns a DataLoader", """
        def build_model(): return mlp()
        def build_dataset(): return torch.utils.data.DataLoader(dataset(), batch_size=8)
        """, {}, [], 2, "returned a DataLoader"),
    ("float32 and float64 items", """
        class Mixed(Wrapped):
            def item(self, i):
                x, y = super().item(i)
                return (x.double() if i % 2 else x), y
        def build_model(): return mlp()
        def build_dataset(): return Mixed()
        """, {}, [], 2, "dtype"),
    ("a single sample", """
        def build_model(): return mlp()
        def build_dataset(): return dataset(1)
        """, {}, [], 2, "single sample"),
    ("argparse at import", """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--data", required=True)
        args = parser.parse_args()
        """ + SOUND, {}, [], 2, "argparse"),
    ("optimizer config with lr: fast", SOUND, {"nndoctor.yaml": "optimizer:\n  name: SGD\n  lr: fast\n"}, [], 2, "nndoctor.yaml"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_answers_with_one_paragraph(tmp_path, case):
    _, body, extra, args, code, phrase = case
    path = model_file(tmp_path, body)
    for name, text in extra.items():
        (tmp_path / name).write_text(text)
    result = invoke("check", path, "--device", "cpu", *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert phrase in flat(result.stderr), flat(result.stderr)
    assert "PASSED" not in result.stderr


def test_a_model_file_with_null_bytes_is_named_without_a_line_none(tmp_path):
    path = tmp_path / "model.py"
    path.write_bytes(b"def build_model():\n    return 1\x00\n")
    result = invoke("check", path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "line None" not in result.stderr and "model.py" in flat(result.stderr)


def test_user_prints_do_not_pollute_json_on_stdout(tmp_path):
    path = model_file(tmp_path, """
        print("hello from import")
        class Chatty(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = mlp()
            def forward(self, x):
                print("forward!")
                return self.net(x)
        def build_model(): return Chatty()
        def build_dataset(): return dataset()
        """)
    result = invoke("check", path, "--only", "initial_loss,output_head", "--json", "-", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "PASSED"
    assert "hello from import" in result.stderr


def test_a_report_never_overwrites_an_input_and_no_bytecode_is_left(tmp_path):
    path = model_file(tmp_path, SOUND)
    before = path.read_text()
    result = invoke("check", path, "--only", "initial_loss", "--report", path, "--device", "cpu")
    assert result.exit_code == 2 and "overwrite" in flat(result.stderr)
    assert path.read_text() == before
    result = invoke("check", path, "--only", "initial_loss", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "__pycache__").exists()


def test_every_written_file_is_confirmed(tmp_path):
    path = model_file(tmp_path, SOUND)
    out = tmp_path / "r.json"
    result = invoke("check", path, "--only", "initial_loss", "--json", out, "--junit", tmp_path / "r.xml", "--device", "cpu")
    assert result.exit_code == 0
    assert f"wrote {out}" in flat(result.stderr) and "r.xml" in result.stderr


def test_loading_that_never_returns_is_bounded_by_the_time_budget(tmp_path):
    path = model_file(tmp_path, "while True:\n    pass\n" + SOUND)
    start = time.monotonic()
    result = invoke("check", path, "--time-budget", "2")
    assert time.monotonic() - start < 20
    assert result.exit_code == 2 and "time budget" in flat(result.stderr)


SLOW = """
import os, time
class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()
        self.calls = 0
    def forward(self, x):
        time.sleep(0.01)
        self.calls += 1
        if self.calls == 10 and os.environ.get("CHECKS_RUNNING"):  # loading is over: the checks run
            open(os.environ["CHECKS_RUNNING"], "w").close()
        return self.net(x)
def build_model(): return Slow()
def build_dataset(): return dataset()
"""


def test_checks_past_the_budget_are_not_checked_and_the_run_is_incomplete(tmp_path):
    path = model_file(tmp_path, SLOW)
    out = tmp_path / "r.json"
    result = invoke("check", path, "--time-budget", "2", "--json", out, "--device", "cpu")
    document = json.loads(out.read_text())
    assert result.exit_code == 3, result.output
    assert document["verdict"] == "INCOMPLETE" and "INCOMPLETE" in result.stderr
    skipped = [c for c in document["checks"] if "time budget" in c["summary"]]
    assert skipped and all(c["status"] == "skip" for c in skipped)


def test_the_api_leaves_the_global_random_state_alone():
    from nndoctor import check
    from tests.bad_inputs._base import dataset, mlp

    model, data = mlp(), dataset()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check(model, data, only=["initial_loss", "gradient_flow", "overfit_small_batch"], device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_user_hooks_do_not_fire_on_copies_unless_asked():
    from nndoctor import check
    from tests.bad_inputs._base import dataset, mlp

    model, calls = mlp(), []
    model.register_forward_hook(lambda module, args, output: calls.append(1))
    check(model, dataset(), only=["initial_loss"], device="cpu")
    assert calls == []
    check(model, dataset(), only=["initial_loss"], device="cpu", keep_hooks=True)
    assert calls


def test_a_huge_lazy_dataset_costs_only_the_samples_read():
    from nndoctor import check
    from tests.bad_inputs._base import mlp

    class Lazy(torch.utils.data.Dataset):
        def __len__(self):
            return 10**9

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            x = torch.randn(8, generator=g)
            return x, int(x[0] > 0)

    start = time.monotonic()
    report = check(mlp(), Lazy(), only=["data_integrity"], device="cpu")
    assert report.result("data_integrity").status.value in ("pass", "warn")
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_still_writes_its_report(tmp_path, signum):
    path = model_file(tmp_path, SLOW)
    out = tmp_path / "r.json"
    marker = tmp_path / "running"
    env = {**os.environ, "CI": "", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "CHECKS_RUNNING": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-m", "nndoctor", "check", str(path), "--json", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None and marker.exists(), process.communicate()
    process.send_signal(signum)
    start = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - start < 15
    assert process.returncode == 3, stderr
    assert "INCOMPLETE" in stderr and "Traceback" not in stderr
    assert json.loads(out.read_text())["verdict"] == "INCOMPLETE"
