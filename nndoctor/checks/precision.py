"""precision: weights kept in float16 that the optimizer or the activations will break.

- **Adam's eps in float16.** PyTorch's Adam/AdamW keep their state in the parameter's dtype and
  add eps to sqrt(v) in it. Float16's smallest subnormal is 6e-8, so the default eps=1e-8 rounds to
  0; (1 - beta2) * g^2 underflows to 0 for every |g| below ~8e-3 as well, and the step divides by
  zero: inf, or 0/0 = NaN where a gradient is 0 (a ReLU unit that did not fire). Measured: a ReLU MLP
  in float16 under Adam(eps=1e-8) has non-finite weights after its first step (the for-loop and
  foreach implementations; ``fused=True`` computes in float32 inside its kernel, and the same MLP
  trains, so fused groups are not judged). Mixed precision
  (float32 master weights under torch.autocast) does not have the problem; bfloat16 neither, as its
  exponent range is float32's.
- **Overflowing activations.** Float16 tops out at 65504: the first module (in execution order)
  whose float16 output turns infinite from finite inputs is where the overflow starts, and
  everything after it is inf or NaN. Values of exactly +-65504 are not counted: attention masks
  are filled with torch.finfo(float16).min on purpose.

Only float16 parameters are judged; float32 and bfloat16 models pass with their dtypes reported.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from nndoctor import training
from nndoctor.context import Context
from nndoctor.result import Finding, Status

FP16_MAX = torch.finfo(torch.float16).max
# Adam-family optimizers whose state lives in the parameter's dtype with eps added to sqrt(v).
ADAM_FAMILY = ("Adam", "AdamW", "NAdam", "RAdam", "Adamax")
INPUT_ELEMENTS = 1_000_000


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    dtypes = Counter(str(p.dtype).removeprefix("torch.") for p in ctx.subject.model.parameters() if p.is_floating_point())
    described = ", ".join(f"{count} {dtype}" for dtype, count in dtypes.most_common())
    metrics: dict[str, Any] = {"parameter_dtypes": dict(dtypes)}
    if not dtypes.get("float16"):
        return Finding(Status.PASS, f"parameter tensors: {described or 'none'}; no float16 weights to judge", metrics)
    model = ctx.subject.fresh_model()
    eps = _underflowing_eps(ctx, model)
    overflow = _first_overflow(ctx, model)
    metrics.update({"adam_eps": eps, "overflow_module": overflow[0] if overflow else None})
    if eps is not None:
        return Finding(
            Status.FAIL,
            f"float16 weights ({described}) under {eps[0]}(eps={eps[1]:g}): eps rounds to 0 in float16, so the first "
            f"step divides by zero wherever a gradient's square underflows",
            metrics, (f"float16 cannot hold values below 6e-8; {eps[1]:g} becomes 0",
                      *((f"also: {_overflow_text(overflow)}",) if overflow else ())),
            fix="Keep the weights in float32 and train under torch.autocast(dtype=torch.float16) with a GradScaler "
                "(or use bfloat16); if the weights must stay float16, raise Adam's eps to 1e-4.",
            codes=("fp16_adam_eps",),
        )
    if overflow is not None:
        return Finding(
            Status.FAIL, f"float16 activations overflow: {_overflow_text(overflow)}", metrics,
            ("float16's largest value is 65504; everything after the overflow is inf or NaN",),
            fix=f"Keep {overflow[0]} (or the whole model) in float32, normalize its input, or scale its weights down; "
                f"torch.autocast runs overflow-prone ops (softmax, norms, losses) in float32 for you.",
            codes=("fp16_overflow",),
        )
    return Finding(Status.PASS, f"parameter tensors: {described}; the optimizer's eps is representable and no float16 activation overflows", metrics)


def _underflowing_eps(ctx: Context, model: nn.Module) -> tuple[str, float] | None:
    """(optimizer name, eps) when an Adam-family group holds float16 parameters and its eps is 0 in float16."""
    optimizer = training.make_optimizer(ctx, model)
    name = type(optimizer).__name__
    if name not in ADAM_FAMILY:
        return None
    for group in optimizer.param_groups:
        eps = group.get("eps")
        halves = any(p.dtype == torch.float16 for p in group["params"])
        if group.get("fused"):  # the fused kernel does its arithmetic in float32: eps survives
            continue
        if halves and isinstance(eps, (int, float)) and float(torch.tensor(eps, dtype=torch.float16)) == 0.0:
            return name, float(eps)
    return None


def _first_overflow(ctx: Context, model: nn.Module) -> tuple[str, float] | None:
    """(module path, largest |input|) of the first module in execution order whose float16 output
    reaches float16's maximum while its inputs stay finite."""
    inputs, _ = ctx.batch(ctx.samples_within(INPUT_ELEMENTS, most=64))
    found: list[tuple[str, float]] = []
    ctx.seed_everything()
    with _overflow_hooks(model, found), torch.no_grad():
        ctx.subject.predict(model, inputs)
    return found[0] if found else None


@contextlib.contextmanager
def _overflow_hooks(model: nn.Module, found: list[tuple[str, float]]) -> Iterator[None]:
    def record(path: str):
        def hook(module, args, output):
            if found:
                return
            outputs = [t for t in _tensors(output) if t.dtype == torch.float16]
            # Overflow is a finite computation rounding to inf. Exactly +-65504 is representable
            # and often deliberate (attention masks filled with torch.finfo(float16).min): not judged.
            if not any(bool(torch.isinf(t).any()) for t in outputs):
                return
            sources = [t for t in _tensors(args) if t.is_floating_point()]
            if all(bool(torch.isfinite(t).all()) for t in sources):
                found.append((path or type(model).__name__, max((float(t.abs().max()) for t in sources if t.numel()), default=0.0)))
        return hook

    with contextlib.ExitStack() as stack:
        for path, module in model.named_modules():
            stack.enter_context(module.register_forward_hook(record(path)))
        yield


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, Mapping):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _overflow_text(overflow: tuple[str, float]) -> str:
    path, largest = overflow
    return f"{path} is the first module whose float16 output overflows past 65504 to inf (its inputs peak at {largest:.3g})"
