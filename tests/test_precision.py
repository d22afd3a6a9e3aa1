import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor import api
from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


def blobs_in(dtype: torch.dtype) -> TensorDataset:
    x, y = zoo.blobs().tensors
    return TensorDataset(x.to(dtype), y)


def mlp_in(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return zoo.mlp().to(dtype)


def adam(eps: float = 1e-8):
    return lambda params: torch.optim.Adam(params, lr=1e-3, eps=eps)


def first_step_is_finite(model: nn.Module, data: TensorDataset, make_optimizer) -> bool:
    """What really happens to these weights in one training step."""
    x, y = data.tensors
    optimizer = make_optimizer(model.parameters())
    nn.functional.cross_entropy(model(x[:64]).float(), y[:64]).backward()
    optimizer.step()
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_float16_weights_under_default_adam_fail_and_really_break():
    data = blobs_in(torch.float16)
    result = run_check("precision", mlp_in(torch.float16), data, nn.CrossEntropyLoss(), optimizer=adam())
    assert result.status is Status.FAIL and result.codes == ("precision.fp16_adam_eps",)
    assert not first_step_is_finite(mlp_in(torch.float16), data, adam())


def test_float16_weights_under_adam_with_a_representable_eps_pass():
    data = blobs_in(torch.float16)
    result = run_check("precision", mlp_in(torch.float16), data, nn.CrossEntropyLoss(), optimizer=adam(1e-4))
    assert result.status is Status.PASS, result.summary
    assert first_step_is_finite(mlp_in(torch.float16), data, adam(1e-4))


def test_float16_weights_under_fused_adam_pass_as_its_kernel_computes_in_float32():
    data = blobs_in(torch.float16)
    fused = lambda params: torch.optim.Adam(params, lr=1e-3, fused=True)  # noqa: E731
    result = run_check("precision", mlp_in(torch.float16), data, nn.CrossEntropyLoss(), optimizer=fused)
    assert result.status is Status.PASS, result.summary
    assert first_step_is_finite(mlp_in(torch.float16), data, fused)


def test_bfloat16_under_default_adam_passes():
    """bfloat16 has float32's exponent range: eps=1e-8 survives, no false alarm."""
    data = blobs_in(torch.bfloat16)
    result = run_check("precision", mlp_in(torch.bfloat16), data, nn.CrossEntropyLoss(), optimizer=adam())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["parameter_dtypes"] == {"bfloat16": 6}
    assert first_step_is_finite(mlp_in(torch.bfloat16), data, adam())


def test_float32_passes():
    result = run_check("precision", mlp_in(torch.float32), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary


def test_first_overflowing_float16_module_is_named():
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    with torch.no_grad():
        model[0].weight.mul_(300)  # outputs in the hundreds: fine in float16
        model[2].weight.mul_(3000)  # fine in float32, past 65504 in float16
    model = model.half()
    sgd = lambda params: torch.optim.SGD(params, lr=0.01)  # noqa: E731 (no Adam: only the overflow is at stake)
    result = run_check("precision", model, blobs_in(torch.float16), nn.CrossEntropyLoss(), optimizer=sgd)
    assert result.status is Status.FAIL and result.codes == ("precision.fp16_overflow",)
    assert result.metrics["overflow_module"] == "2"


def test_bfloat16_model_gets_no_false_alarm_anywhere():
    report = api.check(mlp_in(torch.bfloat16), blobs_in(torch.bfloat16), loss_fn=nn.CrossEntropyLoss(), device="cpu")
    failed = {r.id: r.summary for r in report.results if r.status in (Status.FAIL, Status.ERROR)}
    assert not failed, failed


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_float32_models_pass(case):
    result = run_case("precision", case)
    assert result.status is Status.PASS, result.summary


class MaskLastPositions(nn.Module):
    """Sets masked positions to the dtype's minimum, as Hugging Face models do in half precision:
    -65504 is representable in float16, not an overflow."""

    def forward(self, scores):
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[:, -2:] = True
        return scores.masked_fill(mask, torch.finfo(scores.dtype).min)


class MaskedScores(nn.Module):
    def __init__(self):
        super().__init__()
        self.score = nn.Linear(20, 8)
        self.mask = MaskLastPositions()
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(torch.softmax(self.mask(self.score(x)), dim=-1))


def test_float16_mask_at_the_float16_minimum_is_not_an_overflow():
    torch.manual_seed(0)
    sgd = lambda params: torch.optim.SGD(params, lr=0.01)  # noqa: E731
    result = run_check("precision", MaskedScores().half(), blobs_in(torch.float16), nn.CrossEntropyLoss(), optimizer=sgd)
    assert result.status is Status.PASS, result.summary
