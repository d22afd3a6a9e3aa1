"""A fast subset of the fault zoo (benchmarks/zoo/) as regression tests.

Broken cases run only the checks their file says must fail (that is what is asserted, and it keeps
the test fast); sound cases run the whole default checklist, since a fail from any check on them
is a false alarm. The full zoo with recall/precision figures is `python benchmarks/zoo.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from nndoctor.engine import run_path
from nndoctor.options import RunOptions

ZOO = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"

BROKEN = [
    "broken_softmax_before_ce_mlp",
    "broken_sigmoid_bce_binary",
    "broken_raw_pixels_mlp_grayscale",
    "broken_nan_in_inputs",
    "broken_regression_target_broadcast",
    "broken_input_ignored",
    "broken_batch_mixing_view",
    "broken_dead_relu_negative_bias",
    "broken_l2_strength_1_sigmoid",
    "broken_params_missing_from_optimizer",
    "broken_lm_no_causal_mask",
    "broken_positional_encoding_batch_axis",
    "broken_lora_nothing_trainable",
    "broken_fp16_adam_eps",
]
SOUND = ["sound_binary_logits", "sound_regression_mlp", "sound_causal_lm_zipf", "sound_bf16_mlp"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: on a shared 2-core machine, two torch threads per process run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def expected_fails(name: str) -> list[str]:
    for node in ast.parse((ZOO / f"{name}.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXPECT_FAIL" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name}.py declares no EXPECT_FAIL")


def failed_ids(name: str, only: list[str] | tuple = ()) -> set[str]:
    report = run_path(ZOO / f"{name}.py", options=RunOptions(only=tuple(only), seed=0, device="cpu"))
    errors = {r.id: r.error for r in report.results if r.status.value == "error"}
    assert not errors, errors
    return {r.id for r in report.results if r.status.value == "fail"}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_case_fails_its_expected_checks(name):
    expected = expected_fails(name)
    assert expected, f"{name} is broken but expects no failing check"
    assert set(expected) <= failed_ids(name, only=expected)


@pytest.mark.parametrize("name", SOUND)
def test_sound_case_raises_no_fail(name):
    assert expected_fails(name) == []
    assert failed_ids(name) == set()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sound_mlp_blobs", "broken_softmax_before_ce_mlp"])
def test_each_check_alone_gives_the_status_of_the_full_run(name):
    """A check's verdict does not depend on which other checks were selected: what it needs from
    other checks' runs is declared (catalog ``requires``) and computed on demand, with their
    settings."""
    full = run_path(ZOO / f"{name}.py", options=RunOptions(seed=0, device="cpu"))
    for result in full.results:
        alone = run_path(ZOO / f"{name}.py", options=RunOptions(only=(result.id,), seed=0, device="cpu"))
        assert alone.result(result.id).status is result.status, (result.id, result.summary, alone.result(result.id).summary)
        assert alone.result(result.id).codes == result.codes, result.id
