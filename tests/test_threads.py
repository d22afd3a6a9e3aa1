"""Torch's CPU thread count: chosen deliberately for the run (--threads, config, check(threads=...))
and the caller's own setting restored afterwards."""

from __future__ import annotations

import os
import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nndoctor import check, threads
from nndoctor.cli import app
from nndoctor.config import load_config
from nndoctor.errors import InputError
from tests import zoo


def test_forward_passes_during_the_run_see_the_chosen_count_and_the_callers_setting_is_restored():
    seen: list[int] = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(torch.get_num_threads()))
    try:
        report = check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only="initial_loss", threads=2)
    finally:
        handle.remove()
    assert seen and set(seen) == {2}  # loading the subject included
    assert torch.get_num_threads() == 1  # tests/conftest.py pins one thread
    assert any(note.startswith("Torch threads: 2 ") for note in report.notes)


def test_the_threads_setting_is_restored_when_a_check_raises(monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # not caught by the runner: the run itself is interrupted

    monkeypatch.setattr("nndoctor.runner.run_checks", crash)
    with pytest.raises(KeyboardInterrupt):
        check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only="initial_loss", threads=3)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (3, 1), (8, 4), (64, 4)])
def test_default_is_half_the_usable_cores_between_one_and_four(monkeypatch, cores, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    count, why = threads.default_threads()
    assert count == expected
    assert f"half of {cores} core(s)" in why


def test_default_is_said_in_the_notes():
    report = check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only="initial_loss")
    note = next(n for n in report.notes if n.startswith("Torch threads:"))
    assert "core(s)" in note and "--threads" in note
    assert "load" not in note  # the same seed on the same machine gives the same report


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_unusable_thread_counts_are_bad_input(bad):
    with pytest.raises(InputError, match="threads must be a whole number"):
        check(zoo.mlp(), zoo.blobs(), device="cpu", only="initial_loss", threads=bad)


def test_config_key_and_cli_option(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        from tests import zoo
        from torch import nn
        build_model = zoo.mlp
        build_dataset = zoo.blobs
        loss_fn = nn.CrossEntropyLoss()
    """))
    config = tmp_path / "nndoctor.yaml"
    config.write_text("model: model.py\nthreads: 2\n")
    assert load_config(config).threads == 2

    runner = CliRunner()
    from_config = runner.invoke(app, ["check", str(tmp_path / "model.py"), "--only", "initial_loss", "--device", "cpu", "-f", "json"])
    assert from_config.exit_code == 0, from_config.output
    assert "Torch threads: 2 " in from_config.output
    from_option = runner.invoke(app, ["check", str(tmp_path / "model.py"), "--only", "initial_loss", "--device", "cpu", "-f", "json", "--threads", "3"])
    assert "Torch threads: 3 " in from_option.output
    assert torch.get_num_threads() == 1

    bad_option = runner.invoke(app, ["check", str(tmp_path / "model.py"), "--threads", "0"])
    assert bad_option.exit_code == 2 and "--threads" in bad_option.output and "Traceback" not in bad_option.output
    config.write_text("model: model.py\nthreads: many\n")
    with pytest.raises(InputError, match=f"Config {config}: threads must be a whole number"):
        load_config(config)
