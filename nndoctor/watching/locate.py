"""Which module first produced a NaN/Inf: the last forward rerun with a check on every module's
output, like Hugging Face's DebugUnderflowOverflow but only once something went wrong. The rerun
leaves the model as it was: no gradients, buffers (BatchNorm statistics) and RNG restored."""

from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import nn


def first_nonfinite_module(model: nn.Module, args: tuple, kwargs: dict) -> str | None:
    found: list[str] = []

    def hook_for(name: str):
        def hook(module, inputs, output):
            if not found and isinstance(output, torch.Tensor) and output.dtype.is_floating_point and not torch.isfinite(output).all():
                found.append(name or type(module).__name__)
        return hook

    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    devices = [t.device for t in args if isinstance(t, torch.Tensor) and t.is_cuda]
    with ExitStack() as stack, torch.no_grad(), torch.random.fork_rng(devices=devices):
        for name, module in model.named_modules():
            if not list(module.children()):  # leaves: where a value is computed
                stack.enter_context(module.register_forward_hook(hook_for(name)))
        try:
            model(*args, **kwargs)
        except Exception:  # noqa: BLE001 - locating is best effort; the event stands without it
            pass
        finally:
            for name, value in model.named_buffers():
                value.copy_(buffers[name])
    return found[0] if found else None
