"""trainable_params: what trains and what is frozen, and whether the trainable part can learn at
all (fine-tuning setups: a frozen backbone, PEFT/LoRA adapters on a frozen base model).

- Nothing trainable (every parameter has requires_grad=False, PEFT's "trainable params: 0"): fail.
- Trainable parameters, but the loss has no gradient path to them: fail. The usual cause is
  reentrant gradient checkpointing (``use_reentrant=True``, the old default) on a frozen base: the
  checkpointed blocks' inputs do not require grad, so their outputs carry no grad_fn and torch
  warns "None of the inputs have requires_grad=True"; the adapters inside never get a gradient.
- PEFT adapters (read from PEFT's tuner layers) that are all frozen while something else trains,
  or trainable adapters that do not move in a few steps of the user's optimizer (measured on a
  copy; the reason read from the shared step probe: not held by the optimizer, no gradient, or a
  step that leaves them unchanged): fail. LoRA's B starts at zero, so A gets its first gradient
  and moves one step later; that is not a fault.
- Frozen parameters beside trainable ones are reported, never judged: freezing is deliberate.
"""

from __future__ import annotations

from typing import Any, Mapping

from nndoctor.context import Context
from nndoctor.probes.step import ParamStep, gradient_step
from nndoctor.probes.trainable import MOVE_STEPS, Trainability, adapter_movement, trainability
from nndoctor.result import Finding, Status

NAMES_SHOWN = 3


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    state = ctx.shared(trainability)
    metrics = _metrics(state)
    counts = _counts(state)
    if state.trainable_tensors == 0:
        return Finding(
            Status.FAIL, f"nothing is trainable: all {state.frozen_tensors} parameter tensors have requires_grad=False",
            metrics, (counts,),
            fix="Unfreeze what should train: after peft.get_peft_model do not freeze the wrapped model again "
                "(model.print_trainable_parameters() must not say 0); otherwise set requires_grad=True on the head or layers to fine-tune.",
            codes=("nothing_trainable",),
        )
    if not state.loss_has_gradient:
        return _not_connected(state, metrics, counts)
    adapters = set(state.adapters)
    if adapters:
        return _judge_adapters(ctx, state, adapters, metrics, counts)
    return Finding(Status.PASS, counts, metrics)


def _metrics(state: Trainability) -> dict[str, Any]:
    total = state.trainable_elements + state.frozen_elements
    return {
        "trainable_parameters": state.trainable_elements, "frozen_parameters": state.frozen_elements,
        "trainable_share": state.trainable_elements / total if total else None,
        "trainable_tensors": state.trainable_tensors, "frozen_tensors": state.frozen_tensors,
        "adapter_tensors": len(state.adapters),
    }


def _counts(state: Trainability) -> str:
    total = state.trainable_elements + state.frozen_elements
    share = f" ({100 * state.trainable_elements / total:.3g}%)" if total else ""
    return (
        f"{state.trainable_elements:,} of {total:,} parameters trainable{share}: "
        f"{state.trainable_tensors} tensors trainable, {state.frozen_tensors} frozen"
    )


def _not_connected(state: Trainability, metrics: dict[str, Any], counts: str) -> Finding:
    evidence = [counts, *(f"warning during forward: {w}" for w in state.warnings[:NAMES_SHOWN])]
    if state.gradient_checkpointing:
        evidence.append("the model has gradient checkpointing enabled")
    return Finding(
        Status.FAIL,
        f"the loss does not depend on any of the {state.trainable_tensors} trainable parameter tensors: it has no "
        f"gradient, so nothing trains",
        metrics, tuple(evidence),
        fix="With gradient checkpointing on a frozen base model, make the checkpointed blocks' inputs require grad "
            "(model.enable_input_require_grads() in transformers) or checkpoint with use_reentrant=False "
            "(gradient_checkpointing_kwargs={'use_reentrant': False}); otherwise remove the torch.no_grad()/.detach() "
            "between the trainable parameters and the loss.",
        codes=("loss_not_connected",),
    )


def _judge_adapters(ctx: Context, state: Trainability, adapters: set[str], metrics: dict[str, Any], counts: str) -> Finding:
    probe = ctx.shared(gradient_step)
    steps = [p for p in probe.params if p.name in adapters]
    trainable = [p for p in steps if p.requires_grad]
    if not trainable:
        return Finding(
            Status.FAIL, f"all {len(steps)} adapter tensors are frozen while other parameters train: the adapters never learn",
            metrics, (counts, f"frozen adapters: {_names(p.name for p in steps)}"),
            fix="Leave the adapters trainable (peft.get_peft_model sets requires_grad on them); freeze only the base model, "
                "before wrapping it.",
            codes=("adapters_frozen",),
        )
    moved = ctx.shared(adapter_movement)
    static = [p for p in trainable if not moved.get(p.name, False)]
    if static and probe.finite:
        return Finding(
            Status.FAIL, f"{len(static)} of {len(trainable)} trainable adapter tensors do not move in {MOVE_STEPS} optimizer "
                         f"steps: {_why_static(static)}",
            metrics, (counts, f"static adapters: {_names(p.name for p in static)}"),
            fix="Build the optimizer after peft.get_peft_model, from the wrapped model's parameters, give the adapters' "
                "parameter group a learning rate above 0, and make sure the adapted layers run in forward.",
            codes=("adapters_static",),
        )
    latest = max((p.gradient_step or 1 for p in trainable), default=1)
    when = "from the first step" if latest == 1 else f"from step {latest} on (LoRA's B starts at zero, so A follows a step later)"
    return Finding(
        Status.PASS, f"{counts}; all {len(trainable)} adapter tensors move within {MOVE_STEPS} steps, with gradients {when}",
        metrics, () if probe.finite else ("gradients were not finite; see numerics",),
    )


def _why_static(static: list[ParamStep]) -> str:
    outside = [p for p in static if not p.in_optimizer]
    without = [p for p in static if p.in_optimizer and p.gradient_step is None]
    reasons = [
        *(["not held by the optimizer"] if outside else []),
        *(["no gradient reaches them"] if without else []),
        *(["the optimizer leaves them unchanged (a learning rate of 0?)"] if len(outside) + len(without) < len(static) else []),
    ]
    return "; ".join(reasons)


def _names(names: Any) -> str:
    names = list(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
