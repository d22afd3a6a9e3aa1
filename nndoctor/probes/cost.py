"""What one sample costs: the floating-point operations of an eval-mode forward pass, counted by
torch's own FlopCounterMode on two samples and shared by every check that sizes its work by
compute (the overfit run's and the gradient step's batches, the short run's and label_signal's
step counts, lr_range's batch). Input size alone misjudges it: a ViT-Tiny on 32x32 images reads
3,072 values per sample and spends 0.7 GFLOP on them, ten times a ResNet-18 on the same images.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from nndoctor import batching
from nndoctor.context import Context

PROBE_SAMPLES = 2


def forward_flops_per_sample(ctx: Context) -> float:
    """FLOPs of one sample's forward pass, at least two per parameter (operations the counter does
    not know, such as custom kernels, still cost their weights' multiply-adds)."""
    inputs, _ = ctx.batch(PROBE_SAMPLES)
    n = batching.batch_size_of(inputs)
    model = ctx.subject.fresh_model().eval()
    floor = 2.0 * sum(p.numel() for p in model.parameters())
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            ctx.subject.predict(model, inputs)
    except Exception:  # the counter's module tracking asserts on some outputs (a bare parameter)
        return floor
    return max(float(counter.get_total_flops()) / max(1, n), floor)


def samples_within_flops(ctx: Context, flops: float, most: int, least: int = 16) -> int:
    """How many samples keep one forward pass within about ``flops``, between ``least`` and ``most``:
    compute-heavy models get smaller batches."""
    per_sample = max(1.0, ctx.shared(forward_flops_per_sample))
    return max(least, min(most, int(flops // per_sample)))


def steps_within_flops(ctx: Context, flops: float, batch_size: int, most: int, least: int) -> int:
    """How many training steps of ``batch_size`` samples keep a run within about ``flops``, between
    ``least`` and ``most`` (``most`` wins should they cross); a backward pass costs about two
    forward passes."""
    step_flops = 3 * ctx.shared(forward_flops_per_sample) * batch_size
    return int(min(most, max(least, flops // max(1.0, step_flops))))
