"""Token-level objectives: next-token (causal LM) and masked-LM / tagging losses over (B, T, V).

A language model's loss is a cross-entropy per position: the logits at position t are scored
against the label at t (masked LM, token tagging) or at t + 1 (next-token prediction, the shift
Hugging Face causal LMs apply inside forward), and positions labelled ``ignore_index`` (-100 in
Hugging Face, padding, prompt tokens) do not count. ``recognise`` finds which of these a loss
computes by evaluating it on the first batch, so the checks can judge a token objective as what it
is: chance level ln(V) rather than a class prior, targets that follow Zipf's law rather than an
imbalanced dataset, and an overfit goal that a causal model can reach.

``model_loss`` does the same for a Hugging Face model given ``labels``: the model computes its own
loss, and nndoctor takes the loss the model itself reports, reproduced from the logits (the checks
need ``loss(output, target)``) and verified against it on the first batch.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

HF_IGNORE_INDEX = -100  # Hugging Face's and torch's default ignore_index
SAME_LOSS = 1e-4  # relative agreement for two computations of the same loss


@dataclass(frozen=True)
class TokenObjective:
    """A cross-entropy over (B, T, V) logits and (B, T) integer labels."""

    shift: int  # 1: logits at t predict the label at t + 1 (next-token); 0: the label at t
    ignore_index: int | None  # label value that does not count
    vocab: int  # V, the number of classes at each position
    # Next-token prediction: shifted inside the loss, or labels that are the inputs shifted by one
    # (the dataset did the shift). Output t must then not depend on inputs after t.
    next_token: bool = False

    @property
    def causal(self) -> bool:
        return self.shift == 1 or self.next_token

    @property
    def kind(self) -> str:
        return "next-token prediction" if self.causal else "per-token classification (masked LM, tagging)"

    def align(self, output: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (M, V), labels (M,)) for the M positions the loss scores, in order."""
        if self.shift:
            output, labels = output[:, :-self.shift], labels[:, self.shift:]
        logits, flat = output.reshape(-1, output.shape[-1]), labels.reshape(-1)
        if self.ignore_index is not None:
            kept = flat != self.ignore_index
            logits, flat = logits[kept], flat[kept]
        return logits, flat

    def scored(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: the label positions the loss scores (shifted-out positions are not)."""
        kept = labels != self.ignore_index if self.ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
        if self.shift:
            kept = kept.clone()
            kept[:, : self.shift] = False
        return kept

    def scored_outputs(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: the output positions whose logits the loss scores (position t against
        the label at t + shift)."""
        kept = self.scored(labels)
        if not self.shift:
            return kept
        outputs = torch.zeros_like(kept)
        outputs[:, : -self.shift] = kept[:, self.shift:]
        return outputs


class TokenCrossEntropy(nn.Module):
    """Mean cross-entropy of a token objective: Hugging Face's causal/masked LM loss."""

    def __init__(self, objective: TokenObjective):
        super().__init__()
        self.objective = objective
        self.ignore_index = objective.ignore_index if objective.ignore_index is not None else HF_IGNORE_INDEX

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        shift = self.objective.shift
        if shift:
            output, target = output[:, :-shift], target[:, shift:]
        return F.cross_entropy(output.reshape(-1, output.shape[-1]).float(), target.reshape(-1).long(), ignore_index=self.ignore_index)


def is_token_batch(output: Any, target: Any) -> bool:
    return (
        isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor) and output.dim() == 3
        and target.dim() == 2 and not target.is_floating_point() and output.shape[:2] == target.shape
        and output.shape[1] > 1
    )


def recognise(loss: Callable, output: torch.Tensor, target: torch.Tensor) -> TokenObjective | None:
    """The token objective ``loss(output, target)`` computes on this batch, or None.

    Each candidate (shifted or not, each ignore_index) is evaluated and compared with the loss's
    own value; the shift is decided only when the two candidates give different values, which
    random-init logits always do."""
    if not is_token_batch(output, target):
        return None
    try:
        with torch.no_grad():
            value = float(loss(output, target))
    except Exception:  # a loss that does not take (B, T, V) as it is (it may flatten inside): not one we know
        return None
    return _matching(value, output, target, getattr(loss, "ignore_index", HF_IGNORE_INDEX))


def _matching(value: float, output: torch.Tensor, target: torch.Tensor, ignore: int = HF_IGNORE_INDEX) -> TokenObjective | None:
    """The first candidate (shifted, then not; the loss's ignore_index, then -100) that gives
    ``value`` on this batch."""
    if not math.isfinite(value):
        return None
    ignores = dict.fromkeys((ignore, HF_IGNORE_INDEX))
    for shift in (1, 0):
        for ignore_index in ignores:
            objective = TokenObjective(shift, ignore_index, int(output.shape[-1]))
            with torch.no_grad():
                reference = float(TokenCrossEntropy(objective)(output, target))
            if math.isfinite(reference) and math.isclose(value, reference, rel_tol=SAME_LOSS, abs_tol=1e-6):
                return objective
    return None


NEXT_TOKEN_SHARE = 0.9  # share of label positions equal to the next input token: a pre-shifted LM


def input_ids(inputs: Any) -> Any:
    """The token ids among a batch's inputs: ``input_ids`` of a dict batch, else the inputs."""
    return inputs.get("input_ids") if isinstance(inputs, dict) else inputs


def with_data(objective: TokenObjective, inputs: Any, labels: torch.Tensor) -> TokenObjective:
    """The objective, marked next-token when the labels are the input tokens shifted by one
    (``x = ids[:-1], y = ids[1:]``): a dataset that shifted itself, scored at t."""
    if objective.shift or not isinstance(inputs, (torch.Tensor, dict)):
        return objective
    ids = input_ids(inputs)
    if not isinstance(ids, torch.Tensor) or ids.shape != labels.shape or ids.is_floating_point():
        return objective
    scored = objective.scored(labels)[:, :-1]
    same = (labels[:, :-1] == ids[:, 1:].to(labels.device))[scored]
    if same.numel() and float(same.float().mean()) >= NEXT_TOKEN_SHARE:
        return replace(objective, next_token=True)
    return objective


def accepts_labels(model: nn.Module) -> bool:
    try:
        return "labels" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def _library_notices_off() -> Iterator[None]:
    """Hugging Face logs notices about its loss selection ("loss_type=None ... Using the default
    loss") on this call, which nndoctor makes, not the user: its verbosity is lowered for the
    call and restored."""
    library = sys.modules.get("transformers")
    logging = getattr(getattr(library, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def model_loss(model: nn.Module, inputs: Any, target: Any, prediction: Callable[[Any], torch.Tensor]) -> tuple[nn.Module, str] | None:
    """(loss_fn, source) reproducing the loss a Hugging Face model computes when given
    ``labels``, verified on this batch; None when the model computes none or none we can reproduce.

    ``prediction(raw_output)`` picks the logits out of the model's output."""
    if not isinstance(inputs, dict) or "labels" in inputs or not accepts_labels(model):
        return None
    try:
        with torch.no_grad(), _library_notices_off():
            raw = model(**inputs, labels=target)
    except Exception:  # the model refuses these labels: the default loss is used, as without labels
        return None
    own = raw.get("loss") if isinstance(raw, dict) else getattr(raw, "loss", None)
    if not isinstance(own, torch.Tensor) or own.numel() != 1:
        return None
    output = prediction(raw)
    name = type(model).__name__
    if is_token_batch(output, target):
        objective = _matching(float(own), output, target)
        if objective is None:
            return None
        shifted = ", shifted by one position" if objective.causal else ""
        return TokenCrossEntropy(objective), (
            f"{name}'s own loss (cross-entropy per token{shifted}, labels {objective.ignore_index} ignored), "
            "reproduced from its logits and verified on the first batch"
        )
    criterion = nn.CrossEntropyLoss() if output.dim() == 2 and output.shape[-1] > 1 else nn.MSELoss()
    try:
        with torch.no_grad():
            same = math.isclose(float(criterion(output, target)), float(own), rel_tol=SAME_LOSS, abs_tol=1e-6)
    except Exception:  # a head whose labels this criterion does not take: not reproducible
        return None
    if not same:
        return None
    return criterion, f"{name}'s own loss ({type(criterion).__name__}), verified on the first batch"


@dataclass(frozen=True)
class References:
    """What the best possible models score on a batch of token sequences, for the overfit goal."""

    floor: float  # cross-entropy of the best model that sees what this model sees at each position
    baseline: float  # cross-entropy of the best input-independent prediction: the label unigram
    best_accuracy: float  # share of scored positions the best such model gets right


def references(objective: TokenObjective, ids: Any, labels: torch.Tensor) -> References | None:
    """Exact reference losses of a plain token cross-entropy on this batch.

    A causal model predicts position t from the tokens up to t: where two sequences share a
    prefix and then differ, no causal model can tell them apart, so memorizing 50 sequences does
    not take the loss to 0 (with Zipf-distributed tokens many sequences start with the same
    token). The floor is the empirical entropy of the label given that context (the prefix for a
    causal objective, the whole sequence and the position otherwise); the baseline is the entropy
    of the labels' unigram distribution. Computed as numbers, not as a (B, T, V) prediction, which
    for a real vocabulary would not fit in memory. None without integer input ids shaped like the
    labels."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.shape != labels.shape:
        return None
    scored = objective.scored(labels)
    if not bool(scored.any()):
        return None
    ids_rows, label_rows, scored_rows = ids.tolist(), labels.tolist(), scored.tolist()
    groups: dict[Any, dict[int, int]] = {}
    prefixes: dict[tuple[int, int], int] = {}
    sequences: dict[tuple[int, ...], int] = {}
    for sequence, row_labels, row_scored in zip(ids_rows, label_rows, scored_rows):
        whole = sequences.setdefault(tuple(sequence), len(sequences))  # identical inputs share an id
        prefix = -1
        for t, token in enumerate(sequence):
            prefix = prefixes.setdefault((prefix, token), len(prefixes))  # the id of ids[row, :t + 1]
            source = t + objective.shift  # the label the logits at t are scored against
            if source >= len(sequence) or not row_scored[source]:
                continue
            context = prefix if objective.causal else (whole, t)
            counts = groups.setdefault(context, {})
            label = row_labels[source]
            counts[label] = counts.get(label, 0) + 1
    total = sum(sum(c.values()) for c in groups.values())
    floor = -sum(n * math.log(n / sum(c.values())) for c in groups.values() for n in c.values()) / total
    unigram: dict[int, int] = {}
    for counts in groups.values():
        for label, n in counts.items():
            unigram[label] = unigram.get(label, 0) + n
    baseline = -sum(n * math.log(n / total) for n in unigram.values()) / total
    best = sum(max(c.values()) for c in groups.values()) / total
    return References(floor, baseline, best)


def distribution(objective: TokenObjective, labels: torch.Tensor) -> dict[str, float]:
    """The scored labels as a language distribution: unigram entropy (nats), its perplexity, the
    share of the vocabulary that occurs and the share of label positions the loss ignores."""
    kept = labels[objective.scored(labels)] if labels.dim() == 2 else labels.reshape(-1)
    ignored = int((labels == objective.ignore_index).sum()) if objective.ignore_index is not None else 0
    total = labels.numel()
    if not kept.numel():
        return {"scored": 0, "ignored_share": ignored / total if total else 0.0}
    counts = torch.bincount(kept.reshape(-1).long().clamp_min(0), minlength=objective.vocab).double()
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * p.log()).sum())
    return {
        "scored": int(kept.numel()),
        "ignored_share": ignored / total if total else 0.0,
        "entropy": entropy,
        "perplexity": math.exp(entropy),
        "distinct": int((counts > 0).sum()),
        "coverage": float((counts > 0).sum()) / max(objective.vocab, 1),
    }
