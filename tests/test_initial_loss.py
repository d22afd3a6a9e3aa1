import pytest
import torch
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_start_at_chance(case):
    result = run_case("initial_loss", case)
    assert result.status is Status.PASS, result.summary


def test_classifier_with_huge_final_layer_fails():
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    result = run_check("initial_loss", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["ratio"] > 2
    assert "ln(4)" in result.summary


def test_nll_loss_on_probabilities_fails_as_negative():
    model = nn.Sequential(zoo.mlp(), nn.Softmax(dim=1))
    result = run_check("initial_loss", model, zoo.blobs(), nn.NLLLoss())
    assert result.status is Status.FAIL
    assert "negative" in result.summary


def test_regression_head_far_too_large_warns_with_the_fix_of_scaling_the_head():
    """Outputs 20x too large for targets 100x smaller: an init scale the optimizer corrects, but
    only after many steps, so it warns (scale the head) rather than fails."""
    data = zoo.regression()
    small = torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1] * 0.01)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
    with torch.no_grad():
        model[-1].weight.mul_(20)
    result = run_check("initial_loss", model, small, nn.MSELoss())
    assert result.status is Status.WARN, result.summary
    assert result.codes == ("initial_loss.regression_init_scale",)
    assert result.metrics["baseline_reached_at_step"] > 100
    assert "Scale the head" in result.fix


def test_regression_through_a_bounded_output_stays_a_fail():
    """tanh caps the output at 1 while every target lies near 5: no step closes the gap."""
    data = zoo.regression()
    shifted = torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1] + 5)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1), nn.Tanh())
    result = run_check("initial_loss", model, shifted, nn.MSELoss())
    assert result.status is Status.FAIL, result.summary
    assert result.codes == ("initial_loss.regression_gap_not_closed",)


def test_unet_on_sparse_heat_maps_passes():
    """The issue's case: a BatchNorm U-Net starts at 17x the constant baseline of mostly-zero
    maps (the old verdict: "confidently wrong at init") and trains fine; the gap closes in a few
    dozen steps."""
    unet = _zoo_file("sound_unet_heatmap_regression")
    torch.manual_seed(0)
    result = run_check("initial_loss", unet.build_model(), unet.build_dataset(), unet.loss_fn)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["ratio"] > 5  # far above the baseline at init ...
    assert result.metrics["baseline_reached_at_step"] <= 100  # ... and corrected quickly


def _zoo_file(name: str):
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"
    sys.path.insert(0, str(folder))  # the zoo files import _zoo_common beside them
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(folder))


def test_thresholds_are_overridable():
    model = zoo.mlp()
    with torch.no_grad():
        model[-1].weight.mul_(50)
    result = run_check("initial_loss", model, zoo.blobs(), nn.CrossEntropyLoss(), thresholds={"fail_ratio": 1e9, "warn_ratio": 1e9})
    assert result.status is Status.PASS


# --- language models: chance ln(V) at random init, far below it from pretrained weights ------


def _gpt2_items():
    from torch.utils.data import Dataset

    class Items(Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            first = torch.randint(0, 40, (64, 1), generator=g)
            self.ids = (first + torch.arange(10)) % 40  # each token follows from the previous one

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.ids[i].clone()}

    return Items()


def test_language_model_chance_is_ln_vocab_and_pretrained_starts_far_below(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=40, n_positions=10))
    data = _gpt2_items()
    result = run_check("initial_loss", model, data)
    assert result.status is Status.PASS, result.summary
    assert "chance ln(40) = 3.69" in result.summary and "next-token" in result.summary

    model.save_pretrained(tmp_path / "random")  # a checkpoint that never trained: loads "at chance"
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "random")
    result = run_check("initial_loss", reloaded, data)
    assert result.status is Status.WARN and result.codes == ("initial_loss.pretrained_at_chance",), result.summary

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids = data.ids
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
    model.save_pretrained(tmp_path / "trained")
    result = run_check("initial_loss", transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "trained"), data)
    assert result.status is Status.PASS, result.summary
    assert "far below chance" in result.summary and result.metrics["initial_loss"] < 1.0
