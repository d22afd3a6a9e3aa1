"""`nndoctor init`: the template model.py and nndoctor.yaml it writes run as they are, state the
model-file contract, list every config key, and never overwrite a user's files by accident."""

from __future__ import annotations

import re

import pytest

from nndoctor import config, engine, init_templates, usercode
from nndoctor.options import RunOptions
from tests.test_cli import flat, invoke

CONTRACT_NAMES = ("build_model", "build_dataset", "loss_fn", "build_optimizer", "task")


def test_init_writes_a_setup_that_nndoctor_check_passes(tmp_path):
    folder = tmp_path / "new_project"
    result = invoke("init", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["model.py", "nndoctor.yaml"]
    assert f"nndoctor check {folder}" in flat(result.stdout)  # says what to run next

    checked = invoke("check", folder, "--only", "initial_loss,data_integrity")
    assert checked.exit_code == 0, checked.output
    assert "nndoctor: PASSED — 2 pass" in checked.stderr
    assert "task classification (declared)" in checked.stdout  # model.py's `task` was read


def test_init_defaults_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("init").exit_code == 0
    assert (tmp_path / "model.py").is_file() and (tmp_path / "nndoctor.yaml").is_file()


@pytest.mark.parametrize("existing", [("model.py",), ("nndoctor.yaml",), ("model.py", "nndoctor.yaml")])
def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, existing):
    for name in existing:
        (tmp_path / name).write_text("# mine\n", encoding="utf-8")
    result = invoke("init", tmp_path)
    assert result.exit_code == 2
    message = flat(result.stderr)
    assert all(str(tmp_path / name) in message for name in existing)
    assert "does not overwrite" in message and "--force" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(existing)  # not even the missing one
    assert all((tmp_path / name).read_text() == "# mine\n" for name in existing)


def test_init_force_replaces_the_files(tmp_path):
    (tmp_path / "model.py").write_text("# mine\n", encoding="utf-8")
    result = invoke("init", tmp_path, "--force")
    assert result.exit_code == 0
    assert (tmp_path / "model.py").read_text() == init_templates.template_text("model.py")


def test_init_into_a_file_is_refused(tmp_path):
    target = tmp_path / "model.py"
    target.write_text("# mine\n", encoding="utf-8")
    result = invoke("init", target)
    assert result.exit_code == 2 and "is a file" in flat(result.stderr)


def test_model_template_defines_and_explains_the_contract(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(init_templates.template_text("model.py"), encoding="utf-8")
    module = usercode.import_model_file(path)
    for name in CONTRACT_NAMES:
        assert hasattr(module, name), name
    for name in (*CONTRACT_NAMES, "output_key", "regularization(model)"):  # the optional hooks too
        assert name in module.__doc__, f"the docstring does not explain {name}"


def _uncommented(template: str) -> str:
    """The config with every example setting switched on: after the header (up to the first blank
    line), '# ' is removed from the start of each line."""
    header, body = template.split("\n\n", 1)
    return header + "\n\n" + re.sub(r"^# ", "", body, flags=re.M)


def test_config_template_lists_every_key_and_each_example_is_valid(tmp_path):
    template = init_templates.template_text("nndoctor.yaml")
    for key in (*config._TOP_KEYS, *config._CHECK_KEYS):
        assert re.search(rf"^#?\s*{key}:", template, re.M), f"nndoctor.yaml template does not show `{key}:`"
    active = tmp_path / "active.yaml"
    active.write_text(template, encoding="utf-8")
    assert config.load_config(active).model == tmp_path / "model.py"

    every_example = tmp_path / "every_example.yaml"
    every_example.write_text(_uncommented(template), encoding="utf-8")
    settings = config.load_config(every_example)  # no unknown key, every value of the right kind
    assert settings.task == "classification" and settings.output == "logits"
    selection = engine.plan(settings, RunOptions())  # check ids and threshold keys exist in the catalog
    assert {spec.id for spec in selection.to_run} <= {"initial_loss", "overfit_small_batch"}
