"""batch_independence: samples of a batch must not see each other (Karpathy, "A Recipe for
Training Neural Networks": "use backprop to chart dependencies").

In eval mode the prediction for one sample of a batch (the focus, the middle sample, so that a
leak from either side shows) must not depend on any other sample's input. Two measurements on a
copy of the model:

* gradient: backpropagate a random projection of the focus's prediction (random, so that no
  cancellation hides a dependency) to every input; the gradient mass landing on the other
  samples, relative to the focus's own, must be zero. Integer inputs (tokens) take no gradient,
  so the float output of the leaf layer that reads them (an nn.Embedding) stands in for them.
* swap: give the other samples the focus's own inputs and run again; the focus's prediction
  must not change. This sees what gradients cannot (masks, indices, routing) and locates the
  first layer whose output for the focus changes.

Eval mode keeps batch norm on its running statistics and dropout off, so layers that mix a batch
only while training raise no alarm. Batch norm without running statistics normalises with the
batch's own statistics even in eval mode; it is run as at inference instead, with the statistics
of a standardised input (a per-channel affine map), which keeps the rest of the graph intact
(swapping it for Identity would drop its affine transform and say nothing more).

The batch is dimension 0 of the inputs (that is how samples are collated) and is assumed to be
dimension 0 of the prediction too; a batch size that no other input dimension shares is chosen,
so that the batch axis of what the model computes can be recognised.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from nndoctor import batching
from nndoctor.context import Context
from nndoctor.probes.data import named_tensors
from nndoctor.result import Finding, Status, Table

# How far past the configured number of samples to look for a batch size that no other input
# dimension has.
SIZE_SEARCH = 8


@dataclass(frozen=True)
class GradientChart:
    leak: tuple[float, ...]  # per sample: gradient mass on its inputs / the focus's own
    through: tuple[str, ...]  # the tensors that took the gradient


@dataclass(frozen=True)
class Swap:
    """Other samples given the focus's inputs, and what that did to the focus's prediction."""

    samples: tuple[int, ...]
    change: float  # norm of the prediction's change / the batch's per-sample prediction norm
    first_mixed: str | None  # the first module whose output for the focus changed


@dataclass(frozen=True)
class Row:
    """The focus's slice of one tensor the model computed, with the batch's per-sample scale."""

    name: str
    values: torch.Tensor
    scale: float


def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding:
    inputs = _batch_of_distinct_size(ctx, int(thresholds["samples"]))
    size = batching.batch_size_of(inputs)
    if size < 2:
        return Finding.skip("the dataset has a single sample: there is no other sample to leak from")
    model, neutralised = _per_sample_copy(ctx)
    focus = size // 2
    base = _traced_forward(ctx, model, inputs, size, focus)
    base_output = base[1]
    if base_output.dim() == 0 or base_output.shape[0] != size:
        return Finding.skip(
            f"the prediction has shape {tuple(base_output.shape)} for a batch of {size}: this check "
            f"assumes the batch is dimension 0 of the prediction",
        )
    if not bool(torch.isfinite(base_output[focus]).all()):
        return Finding.skip(f"the prediction for sample {focus} is not finite: see numerics")
    chart = _chart_gradients(ctx, model, inputs, size, focus)
    swaps = _swaps(ctx, model, inputs, focus, base, float(thresholds["change_tolerance"]))
    if isinstance(chart, str) and not swaps:
        return Finding.skip(f"nothing to measure: {chart}, and all samples have the same inputs")
    finding = _judge(size, focus, chart, swaps, neutralised, thresholds)
    if finding.status is Status.FAIL:
        return finding  # the samples mix: a permutation would change the predictions for that reason too
    moved = _permutation_change(ctx, model, inputs, base_output, float(thresholds["change_tolerance"]))
    if moved is not None and moved > float(thresholds["change_tolerance"]):
        return _position_finding(size, moved, finding)
    return finding


# --- measurement 3: permuting the batch ------------------------------------------------------


def _permutation_change(ctx: Context, model: nn.Module, inputs: Any, base_output: torch.Tensor, tolerance: float) -> float | None:
    """Largest change of a sample's prediction (relative to the batch's per-sample norm) when
    the batch is rotated by one place: every sample keeps its inputs and moves to another
    position, so a model whose samples are independent returns the same predictions, rotated.
    None when the forward pass is random (dropout left on in eval): a sample moved to another
    place draws other random numbers, so the comparison cannot tell."""
    size = base_output.shape[0]
    if _largest_change(_forward(ctx, model, inputs, seed_offset=1), base_output) > tolerance:
        return None
    rotated = _map_tensors(inputs, lambda _, t: t.roll(1, 0) if _in_batch(t, size) else t)
    return _largest_change(_forward(ctx, model, rotated), base_output.roll(1, 0))


def _forward(ctx: Context, model: nn.Module, inputs: Any, seed_offset: int = 0) -> torch.Tensor:
    with torch.no_grad():
        ctx.seed_everything(seed_offset)
        return ctx.subject.predict(model, _map_tensors(inputs, lambda _, t: t.clone()))


def _largest_change(output: torch.Tensor, expected: torch.Tensor) -> float:
    if output.shape != expected.shape:
        return math.inf
    size = expected.shape[0]
    scale = float(expected.detach().double().norm()) / math.sqrt(size)
    worst = float((output.double() - expected.double()).reshape(size, -1).norm(dim=1).max())
    if worst == 0:
        return 0.0
    return worst / scale if scale > 0 and math.isfinite(worst) else math.inf


def _position_finding(size: int, moved: float, independent: Finding) -> Finding:
    summary = (
        f"each sample's prediction depends on its position in the batch: moving every sample one place along "
        f"the batch (inputs unchanged) changes predictions by up to {_percent(moved)}, although no sample reads "
        f"another's inputs. Something is indexed by the batch axis: a positional encoding pe[:x.size(0)] added to "
        f"a batch-first (batch, seq, dim) tensor gives sample i the encoding of position i"
    )
    metrics = {**independent.metrics, "position_change": _json_number(moved)}
    evidence = (*independent.evidence, f"the batch of {size} rotated by one place: predictions change by up to {_percent(moved)}")
    fix = (
        "Index what depends on the position in a sequence by the sequence axis: pe[:, :x.size(1)] (or "
        "pe[:x.size(1)] broadcast over the batch) for batch-first tensors; with sequence-first tensors "
        "(seq, batch, dim) pe[:x.size(0)] is right. Nothing may be indexed by the sample's place in the batch."
    )
    return Finding(Status.FAIL, summary, metrics, evidence, independent.tables, fix=fix, codes=("batch_position",))


# --- the batch and the model ---------------------------------------------------------------


def _batch_of_distinct_size(ctx: Context, samples: int) -> Any:
    """A batch whose size no other input dimension (nor the output width) shares, so that a
    tensor's batch axis is the one of that size."""
    available = ctx.dataset_size
    for size in range(samples, min(samples + SIZE_SEARCH, available + 1)):
        inputs, _ = ctx.batch(size)
        taken = {int(d) for _, t in named_tensors(inputs) for d in t.shape[1:]} | {ctx.subject.output_width}
        if size not in taken:
            return inputs
    return ctx.batch(min(samples, available))[0]


def _per_sample_copy(ctx: Context) -> tuple[nn.Module, list[str]]:
    """An eval-mode copy whose batch norm layers without running statistics are given neutral
    ones. Returns the copy and the paths of those layers. (Parameters keep requires_grad:
    autograd.grad computes only the input gradients asked for, and lazy layers refuse it.)"""
    model = ctx.subject.fresh_model().eval()
    neutralised = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
            _give_neutral_statistics(module, ctx.device)
            neutralised.append(name)
    return model, neutralised


def _give_neutral_statistics(norm: nn.modules.batchnorm._BatchNorm, device: torch.device) -> None:
    like = {"device": norm.weight.device, "dtype": norm.weight.dtype} if norm.affine else {"device": device}
    norm.running_mean = torch.zeros(norm.num_features, **like)
    norm.running_var = torch.ones(norm.num_features, **like)
    norm.num_batches_tracked = torch.tensor(0, dtype=torch.long, device=like["device"])
    norm.track_running_stats = True


# --- measurement 1: the gradient of the focus's prediction --------------------------------


def _chart_gradients(ctx: Context, model: nn.Module, inputs: Any, size: int, focus: int) -> GradientChart | str:
    """Gradient mass per sample, or why it cannot be measured (then the swaps judge alone)."""
    leaves: list[tuple[str, torch.Tensor]] = []

    def stand_in(label: str, tensor: torch.Tensor) -> torch.Tensor:
        leaf = tensor.detach().clone().requires_grad_(True)
        leaves.append((label, leaf))
        return leaf.clone()  # the model may write into what it receives; the leaf stays intact

    def prepare(label: str, tensor: torch.Tensor) -> torch.Tensor:
        return stand_in(label, tensor) if _in_batch(tensor, size) and tensor.is_floating_point() else tensor.clone()

    graded = _map_tensors(inputs, prepare)
    discrete = [t for _, t in named_tensors(graded) if _in_batch(t, size) and not t.is_floating_point()]
    try:
        with _embedding_stand_ins(model, discrete, size, stand_in), _native_rnn_kernels(model):
            ctx.seed_everything()
            output = ctx.subject.predict(model, graded)
            if not leaves or not output.requires_grad:
                return "no gradient reaches the inputs (integer inputs not read by an embedding layer, or a detached path)"
            generator = torch.Generator().manual_seed(ctx.subject.seed)
            projection = torch.randn(output[focus].shape, generator=generator).to(output.device, output.dtype)
            grads = torch.autograd.grad((output[focus] * projection).sum(), [leaf for _, leaf in leaves], allow_unused=True)
    except RuntimeError as exc:  # e.g. the model converts its input to numpy; the swaps still judge
        return f"the gradient pass failed ({str(exc).splitlines()[0]})"
    measured = [(label, grad) for (label, _), grad in zip(leaves, grads) if grad is not None]
    if not measured:
        return "the prediction has no gradient with respect to any input"
    mass = sum(grad.detach().reshape(size, -1).abs().sum(1).double() for _, grad in measured)
    if not bool(torch.isfinite(mass).all()):
        return "the input gradients are not finite"
    own = float(mass[focus])
    if own == 0 and float(mass.sum()) == 0:
        return f"the prediction for sample {focus} has a zero gradient with respect to every input"
    leak = tuple(float(m) / own if own > 0 else (math.inf if m > 0 else 0.0) for m in mass.tolist())
    return GradientChart(leak, tuple(label for label, _ in measured))


@contextlib.contextmanager
def _embedding_stand_ins(
    model: nn.Module, discrete: list[torch.Tensor], size: int, stand_in: Callable[[str, torch.Tensor], torch.Tensor]
) -> Iterator[None]:
    """Replace the float output of every leaf module that reads an integer input of the batch
    (an nn.Embedding on the tokens) by a leaf tensor, the first place such inputs can take a
    gradient. Leaf modules only: an enclosing module could hide a mix inside it."""

    def hook_for(name: str):
        def hook(module, args, kwargs, output):
            if not (_in_batch(output, size) and output.is_floating_point()):
                return None
            received = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if any(_same_tensor(a, d) for a in received for d in discrete):
                return stand_in(f"{name} output", output)
            return None

        return hook

    with contextlib.ExitStack() as stack:
        if discrete:
            for name, module in model.named_modules():
                if next(module.children(), None) is None:
                    stack.enter_context(module.register_forward_hook(hook_for(name), with_kwargs=True))
        yield


@contextlib.contextmanager
def _native_rnn_kernels(model: nn.Module) -> Iterator[None]:
    """cuDNN's RNN kernels refuse a backward pass in eval mode; PyTorch's own kernels do not."""
    if not any(isinstance(m, nn.RNNBase) for m in model.modules()):
        yield
        return
    enabled = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = enabled


# --- measurement 2: giving other samples the focus's inputs -------------------------------


def _swaps(
    ctx: Context, model: nn.Module, inputs: Any, focus: int, base: tuple[list[Row], torch.Tensor], tolerance: float
) -> list[Swap]:
    """Give the other samples the focus's inputs and see whether its prediction or any of its
    activations change. All at once first (one forward for a sound model; giving them all the
    same inputs also moves symmetric statistics such as a batch mean); then, only if that
    changed something, one at a time to tell which samples matter."""
    size = base[1].shape[0]
    columns = [t for _, t in named_tensors(inputs) if _in_batch(t, size)]
    others = tuple(s for s in range(size) if s != focus and any(not torch.equal(t[s], t[focus]) for t in columns))
    if not others:
        return []
    together = _swap(ctx, model, inputs, focus, others, base, tolerance)
    if together.change <= tolerance and together.first_mixed is None:
        return [together]
    return [together, *(_swap(ctx, model, inputs, focus, (s,), base, tolerance) for s in others)]


def _swap(
    ctx: Context,
    model: nn.Module,
    inputs: Any,
    focus: int,
    samples: tuple[int, ...],
    base: tuple[list[Row], torch.Tensor],
    tolerance: float,
) -> Swap:
    base_rows, base_output = base
    size = base_output.shape[0]
    swapped = _map_tensors(inputs, lambda _, t: _with_rows(t, samples, focus) if _in_batch(t, size) else t)
    rows, output = _traced_forward(ctx, model, swapped, size, focus)
    if output.shape != base_output.shape:
        return Swap(samples, math.inf, _first_changed(base_rows, rows, tolerance))
    change = _change(_row("prediction", base_output, 0, focus), _row("prediction", output, 0, focus))
    return Swap(samples, change, _first_changed(base_rows, rows, tolerance))


def _traced_forward(ctx: Context, model: nn.Module, inputs: Any, size: int, focus: int) -> tuple[list[Row], torch.Tensor]:
    """The prediction, and the focus's row of every module output in completion order."""
    rows: list[Row] = []

    def hook_for(name: str):
        def hook(module, args, output):
            tensor = output[0] if isinstance(output, (tuple, list)) and output else output
            row = _focus_row(name, tensor, size, focus)
            if row is not None:
                rows.append(row)

        return hook

    with contextlib.ExitStack() as stack, torch.no_grad():
        for name, module in model.named_modules():
            stack.enter_context(module.register_forward_hook(hook_for(name or f"{type(module).__name__} (the model)")))
        ctx.seed_everything()  # random ops (noise, always-on dropout) draw the same in every pass
        output = ctx.subject.predict(model, _map_tensors(inputs, lambda _, t: t.clone()))
    return rows, output


def _focus_row(name: str, tensor: Any, size: int, focus: int) -> Row | None:
    """The focus's slice of a float module output along its batch axis: dimension 0, or 1 for
    sequence-first tensors (those of an RNN without batch_first)."""
    if not isinstance(tensor, torch.Tensor) or tensor.is_nested or not tensor.is_floating_point():
        return None  # nested tensors (the fast path of a padded transformer) have no batch axis
    axis = next((a for a in (0, 1) if tensor.dim() > a and tensor.shape[a] == size), None)
    return None if axis is None else _row(name, tensor, axis, focus)


def _row(name: str, tensor: torch.Tensor, axis: int, focus: int) -> Row:
    scale = float(tensor.detach().double().norm()) / math.sqrt(tensor.shape[axis])
    return Row(name, tensor.detach().select(axis, focus).clone(), scale)


def _change(before: Row, after: Row) -> float:
    """Norm of the difference relative to the batch's per-sample norm (a zero-norm row makes
    any difference infinite); values that are equal, or NaN in both, count as unchanged."""
    if before.values.shape != after.values.shape:
        return math.inf
    a, b = before.values.double(), after.values.double()
    unchanged = (a == b) | (torch.isnan(a) & torch.isnan(b))
    difference = float(torch.where(unchanged, 0.0, b - a).norm())
    if difference == 0:
        return 0.0
    if not math.isfinite(difference) or before.scale == 0:
        return math.inf
    return difference / before.scale


def _first_changed(before: list[Row], after: list[Row], tolerance: float) -> str | None:
    for old, new in zip(before, after):
        if old.name != new.name:  # the forward took another path: it changed here
            return new.name
        if _change(old, new) > tolerance:
            return old.name
    return None


def _with_rows(tensor: torch.Tensor, samples: tuple[int, ...], donor: int) -> torch.Tensor:
    swapped = tensor.clone()
    swapped[list(samples)] = tensor[donor]
    return swapped


# --- judging ---------------------------------------------------------------------------------


def _judge(
    size: int,
    focus: int,
    chart: GradientChart | str,
    swaps: list[Swap],
    neutralised: list[str],
    thresholds: Mapping[str, Any],
) -> Finding:
    gradient = {s: leak for s, leak in enumerate(chart.leak) if s != focus} if isinstance(chart, GradientChart) else {}
    together = swaps[0] if swaps else None
    alone = {swap.samples[0]: swap for swap in swaps[1:]}
    leaking = _leaking(gradient, together, alone, float(thresholds["tolerance"]), float(thresholds["change_tolerance"]))
    located = next((swap for swap in (*sorted(alone.values(), key=lambda w: -w.change), together) if swap and swap.first_mixed), None)
    worst_leak = max(gradient.values(), default=None)
    worst_swap = max(alone.values(), key=lambda swap: swap.change, default=together)
    metrics = {
        "samples": size,
        "focus_sample": focus,
        "gradient_leak": _json_number(worst_leak),
        "output_change": _json_number(together.change if together else None),
        "leaking_samples": sorted(leaking),
    }
    evidence = [
        f"eval mode, a batch of {size} along dimension 0; sample {focus} is the focus",
        _gradient_line(chart),
        _together_line(focus, together),
        *(f"batch norm `{name}` keeps no running statistics (it would normalise with the batch's even "
          f"in eval mode): run with mean 0, variance 1" for name in neutralised),
    ]
    if located is not None:
        metrics["first_mixed_at"] = located.first_mixed
        evidence.append(
            f"giving {_who(located)} the inputs of sample {focus} first changes sample {focus}'s activations at "
            f"the output of `{located.first_mixed}`: the samples mix there or in the code feeding it"
        )
    tables = (_table(size, focus, gradient, alone),)
    figures = _figures(focus, worst_leak, worst_swap)
    if leaking:
        if worst_leak == 0:
            evidence.append(
                "no gradient crosses samples: the dependency runs through something without a gradient "
                "(a mask, an index, a shape, a routing decision)"
            )
        plural = "s" if len(leaking) > 1 else ""
        summary = f"sample {focus}'s prediction depends on sample{plural} {', '.join(map(str, sorted(leaking)))} of the batch: {figures}"
        return Finding(Status.FAIL, summary, metrics, tuple(evidence), tables, fix=_fix(located), codes=("samples_mix",))
    if located is not None:
        summary = (
            f"sample {focus}'s prediction does not depend on the other samples yet, but its activations do: "
            f"giving {_who(located)} its inputs changes its output of `{located.first_mixed}` ({figures}); "
            f"a zero-initialised head hides such a mix until training starts"
        )
        return Finding(Status.WARN, summary, metrics, tuple(evidence), tables, fix=_fix(located), codes=("activations_mix",))
    summary = f"sample {focus}'s prediction is independent of the other {size - 1} samples: {figures}"
    return Finding(Status.PASS, summary, metrics, tuple(evidence), tables)


def _leaking(
    gradient: Mapping[int, float], together: Swap | None, alone: Mapping[int, Swap], tolerance: float, change_tolerance: float
) -> set[int]:
    """The samples the focus's prediction depends on, by gradient or by swapping."""
    leaking = {s for s, leak in gradient.items() if leak > tolerance}
    leaking |= {s for s, swap in alone.items() if swap.change > change_tolerance}
    if together is not None and together.change > change_tolerance and not alone.keys() & leaking:
        leaking |= set(together.samples)  # only their joint change matters (a batch-wide max, say)
    return leaking


def _figures(focus: int, worst_leak: float | None, worst_swap: Swap | None) -> str:
    parts = []
    if worst_leak == 0:
        parts.append("no gradient reaches the other samples' inputs")
    elif worst_leak is not None:
        parts.append(f"the other samples' inputs receive up to {_times(worst_leak)} its own input gradient")
    if worst_swap is not None:
        parts.append(f"giving {_who(worst_swap)} the inputs of sample {focus} changes its prediction by {_percent(worst_swap.change)}")
    return "; ".join(parts)


def _who(swap: Swap) -> str:
    return f"sample {swap.samples[0]}" if len(swap.samples) == 1 else "the other samples"


def _times(value: float) -> str:
    if value == 0:
        return "0"
    return "unbounded times" if math.isinf(value) else f"{value:.2g}x"


def _percent(value: float) -> str:
    return "an unbounded amount" if math.isinf(value) else f"{100 * value:.3g}%"


def _gradient_line(chart: GradientChart | str) -> str:
    if isinstance(chart, str):
        return f"gradient not measured: {chart}; judged by giving other samples its inputs"
    return f"gradient taken at: {', '.join(chart.through)}"


def _together_line(focus: int, together: Swap | None) -> str:
    if together is None:
        return f"every sample has the same inputs as sample {focus}: none could be swapped"
    return (
        f"giving the {len(together.samples)} other samples the inputs of sample {focus} at once changes its "
        f"prediction by {_percent(together.change)}"
    )


def _table(size: int, focus: int, gradient: Mapping[int, float], alone: Mapping[int, Swap]) -> Table:
    rows = []
    for sample in range(size):
        if sample == focus:
            rows.append((sample, "1 (focus)", "-"))
            continue
        swap = alone.get(sample)
        rows.append((
            sample,
            _times(gradient[sample]) if sample in gradient else "not measured",
            _percent(swap.change) if swap else "-",
        ))
    return Table(
        f"How sample {focus}'s prediction depends on each sample",
        ("sample", "input gradient vs its own", f"prediction change when given sample {focus}'s inputs"),
        tuple(rows),
    )


def _fix(located: Swap | None) -> str | None:
    """Advice naming the layer where the samples first mix, when the swaps located it."""
    if located is None:
        return None
    return (
        f"Look at `{located.first_mixed}` and the code that feeds it: reorder axes with "
        f"permute/transpose (never view/reshape across the batch axis), keep the batch dimension "
        f"where each layer expects it (batch_first=True for RNN/attention layers given (batch, "
        f"seq, feature) tensors), take statistics per sample, and build attention masks per "
        f"sample (repeat_interleave over heads, not repeat)."
    )


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf"


# --- nested batches --------------------------------------------------------------------------


def _map_tensors(value: Any, fn: Callable[[str, torch.Tensor], Any], label: str = "input") -> Any:
    """``fn(label, tensor)`` applied to every tensor of a (nested) batch, keeping its structure;
    labels name each tensor the way the user indexes it (input['ids'], input[1])."""
    if isinstance(value, torch.Tensor):
        return fn(label, value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn, f"{label}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn, f"{label}[{i}]") for i, v in enumerate(value))
    return value


def _in_batch(value: Any, size: int) -> bool:
    return isinstance(value, torch.Tensor) and not value.is_nested and value.dim() > 0 and value.shape[0] == size


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same batch tensor, or an equal copy of it (a clone, a .long() of a long tensor)."""
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b))
