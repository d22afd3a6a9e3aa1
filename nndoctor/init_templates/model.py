"""model.py: what `nndoctor check` examines. Written by `nndoctor init`; edit it to describe your setup.

nndoctor imports this file (it may import modules beside it) and looks for these names:

    build_model()            required: your nn.Module (or get_model(), or a module-level `model`)
    build_dataset()          required unless nndoctor.yaml has `data:`: (input, target) pairs
    loss_fn                  optional: your loss; default from the task
    build_optimizer(params)  optional: your optimizer; default Adam(lr=1e-3)
    task                     optional: classification | binary | multilabel | regression
    output_key               optional: which part of a dict / tuple / .logits output is the prediction
    regularization(model)    optional: an explicit penalty your training adds to the loss

nndoctor never changes your model, data or files: every check works on copies.

As written, this is a sound 4-class MLP on synthetic data, so `nndoctor check` passes on it.
Replace the bodies with your own model, data, loss and optimizer, then run:

    nndoctor check model.py
"""

import torch
from torch import nn
from torch.utils.data import TensorDataset

NUM_FEATURES = 20
NUM_CLASSES = 4


def build_model() -> nn.Module:
    """Required (or get_model(), or a module-level `model` instance): your nn.Module, freshly
    initialized, exactly as your training script builds it. Its forward may return a tensor, a
    tuple, a dict or an object with .logits (say which part is the prediction with `output:` in
    nndoctor.yaml, or `output_key = "logits"` here)."""
    return nn.Sequential(
        nn.Linear(NUM_FEATURES, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, NUM_CLASSES),  # raw logits: CrossEntropyLoss applies the softmax itself
    )


def build_dataset():
    """Required unless nndoctor.yaml names a data spec (data:): a map-style
    torch.utils.data.Dataset of (input, target) pairs, preprocessed exactly as in training (same
    normalization, same label encoding). An input may be a tensor, a tuple of tensors (passed to
    forward as positional arguments) or a dict (keyword arguments). A few hundred samples or more
    let the data checks see your class balance and input statistics."""
    generator = torch.Generator().manual_seed(0)  # fixed data: same seed, same verdicts
    labels = torch.arange(1000) % NUM_CLASSES  # balanced classes
    centers = torch.randn(NUM_CLASSES, NUM_FEATURES, generator=generator) * 0.6
    inputs = centers[labels] + torch.randn(1000, NUM_FEATURES, generator=generator)
    inputs = (inputs - inputs.mean(0)) / inputs.std(0)  # standardized, as training inputs should be
    return TensorDataset(inputs, labels)


# Optional: the loss your training uses, a torch.nn loss or any callable (output, target) -> scalar
# tensor. Default, from the task: CrossEntropyLoss, BCEWithLogitsLoss or MSELoss.
loss_fn = nn.CrossEntropyLoss()


def build_optimizer(params):
    """Optional: the optimizer your training uses, built for the parameters given (nndoctor
    trains copies of your model, each with its own optimizer). Default: Adam(lr=1e-3)."""
    return torch.optim.Adam(params, lr=1e-3)


# Optional: classification | binary | multilabel | regression. Default: inferred from the loss and
# the targets (the report says what it inferred). Declare it when the inference could be wrong.
task = "classification"

# Optional, when your training adds an explicit penalty to the loss (e.g. L1 on the weights): the
# term as a function of the model, so that the checks see the loss your training minimizes.
# def regularization(model):
#     return 1e-5 * sum(p.abs().sum() for p in model.parameters())
