"""The model's output and loss at initialization on a real batch (train mode, no gradient)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nndoctor.context import Context

BATCH = 256


@dataclass(frozen=True)
class InitialPass:
    output: torch.Tensor  # detached prediction on the batch
    targets: Any
    loss: float


def initial_pass(ctx: Context) -> InitialPass:
    inputs, targets = ctx.batch(BATCH)
    model = ctx.subject.fresh_model()
    ctx.seed_everything()
    with torch.no_grad():
        output = ctx.subject.predict(model, inputs)
        loss = ctx.subject.compute_loss(output, targets)
    return InitialPass(output.detach(), targets, float(loss))
