"""The Python API: ``nndoctor.check`` gives the CLI's report for objects in hand."""

from __future__ import annotations

import copy
import json
import runpy

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import nndoctor
from nndoctor import check
from nndoctor.cli import app
from nndoctor.errors import InputError
from nndoctor.result import Report, Status
from tests import zoo

# Confidently wrong at init (initial_loss fails), tanh and ReLU layers, SGD with momentum and
# weight decay from build_optimizer: most checks have something to measure.
MODEL_FILE = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def build_model():
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        model[-1].weight.mul_(40)
    return model


def build_dataset():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(192) % 3
    x = torch.randn(192, 12, generator=g) + torch.randn(3, 12, generator=g)[labels]
    return TensorDataset((x - x.mean(0)) / x.std(0), labels)


loss_fn = nn.CrossEntropyLoss()


def build_optimizer(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
'''

# Every check but the long training runs.
SELECTION = {"quick": True, "skip": ["overfit_small_batch"]}


def comparable(report_json: dict) -> dict:
    """What must agree between two runs of the same setup: everything but timings, and but the
    notes, which say where the loss and optimizer came from (model file vs given)."""
    checks = [{k: v for k, v in c.items() if k != "duration_s"} for c in report_json["checks"]]
    return {"status": report_json["status"], "task": report_json["task"], "checks": checks,
            "likely_causes": report_json["likely_causes"]}


def test_api_results_equal_cli_results_for_the_same_model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL_FILE, encoding="utf-8")
    cli = CliRunner().invoke(app, ["check", str(path), "--quick", "--skip", "overfit_small_batch", "--json", "-", "--device", "cpu"],
                             env={"CI": None, "GITHUB_ACTIONS": None}, catch_exceptions=False)
    assert cli.exit_code == 1, cli.stderr  # initial_loss fails
    from_cli = json.loads(cli.stdout)

    torch.manual_seed(0)  # as the CLI seeds before building (--seed defaults to 0)
    user = runpy.run_path(str(path))
    report = check(user["build_model"](), user["build_dataset"](), loss_fn=user["loss_fn"],
                   optimizer=user["build_optimizer"], device="cpu", **SELECTION)
    from_api = json.loads(report.to_json())

    assert comparable(from_api) == comparable(from_cli)
    assert report.result("initial_loss").status is Status.FAIL and not report.passed
    assert len(from_api["checks"]) >= 12


def test_report_is_the_cli_report_object():
    torch.manual_seed(0)
    report = nndoctor.check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only="initial_loss,output_head")
    assert isinstance(report, Report) and report.passed and report.device == "cpu"
    assert [r.id for r in report.results] == ["output_head", "initial_loss"]  # catalog order
    assert report.result("initial_loss").metrics["expected"] == pytest.approx(1.386, abs=1e-3)
    assert json.loads(report.to_json())["checks"][1]["id"] == "initial_loss"
    assert "initial_loss" in report.to_markdown()


def test_an_optimizer_instance_gives_the_results_of_the_equivalent_factory():
    torch.manual_seed(0)
    model = zoo.mlp()
    instance = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    only = ["update_ratio", "regularization_ratio", "gradient_flow"]
    given = check(model, zoo.blobs(), nn.CrossEntropyLoss(), optimizer=instance, device="cpu", only=only)
    factory = check(model, zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=only,
                    optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3, weight_decay=0.1))
    for check_id in only:
        assert given.result(check_id).metrics == factory.result(check_id).metrics, check_id
    assert "AdamW (lr=0.003" in " ".join(given.notes) and "rebuilt for each copy" in " ".join(given.notes)
    assert instance.state == {} and all(p.grad is None for p in model.parameters())  # the user's own untouched


@pytest.mark.parametrize("factory, says", [
    (lambda params: torch.optim.SGD(OUTSIDE.parameters(), lr=0.1), "other parameters than the ones it receives"),
    (lambda params: "SGD", "returned a str, not a torch.optim.Optimizer"),
    (lambda params: torch.optim.SGD(params, lr=-1.0), "building the optimizer .* raised ValueError"),
])
def test_an_optimizer_factory_that_cannot_train_the_copies_is_bad_input(factory, says):
    with pytest.raises(InputError, match=says):
        check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), optimizer=factory, device="cpu", only=["initial_loss"])


OUTSIDE = zoo.mlp()  # a factory that captures some model's parameters instead of its argument


def test_an_optimizer_instance_of_another_model_is_bad_input():
    """In the user's own training it would not update the model either."""
    with pytest.raises(InputError, match="holds none of the model's parameters"):
        check(zoo.mlp(), zoo.blobs(), optimizer=torch.optim.SGD(OUTSIDE.parameters(), lr=0.1), device="cpu", only=["initial_loss"])


def test_thresholds_are_given_as_in_the_config():
    torch.manual_seed(0)
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    default = check(model, zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"])
    relaxed = check(model, zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"],
                    thresholds={"initial_loss": {"fail_ratio": 1e9, "warn_ratio": 1e9}})
    assert default.result("initial_loss").status is Status.FAIL
    assert relaxed.result("initial_loss").status is Status.PASS
    with pytest.raises(InputError, match=r"nndoctor\.check\(\): check initial_loss has no threshold fail_ratoi"):
        check(model, zoo.blobs(), device="cpu", thresholds={"initial_loss": {"fail_ratoi": 3}})


def test_only_and_skip_take_lists_or_comma_separated_ids():
    torch.manual_seed(0)
    report = check(zoo.mlp(), zoo.blobs(), device="cpu", only="initial_loss", skip=["initial_loss"])
    assert [(r.id, r.status) for r in report.results] == [("initial_loss", Status.SKIP)]
    with pytest.raises(InputError, match=r"nndoctor.check\(\) \(skip\): unknown check id\(s\) inital_loss"):
        check(zoo.mlp(), zoo.blobs(), device="cpu", skip="inital_loss")


def test_fail_on_warn_makes_warnings_fail_the_report():
    """Label leakage: the one-hot labels are the inputs, the loss at init is far below chance."""
    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4) * 10)
        model.bias.zero_()
    labels = torch.arange(64) % 4
    data = torch.utils.data.TensorDataset(nn.functional.one_hot(labels, 4).float(), labels)
    lenient = check(model, data, nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"])
    strict = check(model, data, nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"], fail_on="warn")
    assert lenient.result("initial_loss").status is Status.WARN
    assert lenient.passed and not strict.passed
    with pytest.raises(InputError, match="fail_on must be one of fail, warn"):
        check(model, data, device="cpu", fail_on="error")


def test_regularization_penalty_is_part_of_the_setup():
    torch.manual_seed(0)
    heavy = lambda model: 100.0 * sum(p.pow(2).sum() for p in model.parameters())  # noqa: E731
    report = check(zoo.mlp(), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=["regularization_ratio"], regularization=heavy)
    assert report.result("regularization_ratio").status is Status.FAIL


def test_the_user_objects_are_not_modified():
    torch.manual_seed(0)
    model, data = zoo.SmallCNN(), zoo.images(n=64)
    state = copy.deepcopy(model.state_dict())
    check(model, data, nn.CrossEntropyLoss(), device="cpu", only=["update_ratio", "batch_independence"])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_the_cpu_verdicts():
    """The fast checks and every adapter on GPU tensors: same verdicts as on the CPU."""
    from tests.test_adapters import FAST, LitModel, TinyEncoder, TokenItems

    setups = [
        (zoo.SmallCNN(), zoo.images(n=64), {"loss_fn": nn.CrossEntropyLoss()}),
        (LitModel(zoo.mlp()), zoo.blobs(), {}),
        (TinyEncoder(), TokenItems(), {}),
    ]
    for model, data, options in setups:
        only = [*FAST, "batch_independence", "overfit_small_batch", "numerics"]
        on_gpu = check(model, data, device="cuda", only=only, **options)
        on_cpu = check(model, data, device="cpu", only=only, **options)
        assert on_gpu.device.startswith("cuda")
        assert {r.id: r.status for r in on_gpu.results} == {r.id: r.status for r in on_cpu.results}
        assert all(r.error is None for r in on_gpu.results), [r.error for r in on_gpu.results if r.error]


def test_auto_device_is_cpu_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: auto picks it")
    report = check(zoo.mlp(), zoo.blobs(), device="auto", only=["initial_loss"])
    assert report.device == "cpu"
