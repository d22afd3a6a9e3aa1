"""Data specs: every kind loads from local files, every bad spec is one clear InputError naming the
spec, and every sample config runs through the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from nndoctor import dataspec
from nndoctor.cli import app
from nndoctor.config import load_config
from nndoctor.errors import InputError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
SOUND_SAMPLES = ("mlp_classifier", "factory", "tensors_pt", "tensors_npz", "torchvision_mnist", "imagefolder", "synthetic")
FLOAT_INPUT_SAMPLES = ("factory", "tensors_pt", "torchvision_mnist", "imagefolder", "synthetic")  # tensors_npz: tokens


@pytest.fixture(scope="module")
def make_data():
    """sample_configs/make_data.py, the generator of every sample data file."""
    spec = importlib.util.spec_from_file_location("sample_make_data", SAMPLES / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_spec(folder: Path, values, name: str = "data.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values), encoding="utf-8")
    return path


def first(dataset):
    x, y = dataset[0]
    return torch.as_tensor(x), torch.as_tensor(y)


FACTORY = """
import torch
from torch.utils.data import TensorDataset

def make(n=10, scale=1.0):
    return TensorDataset(torch.randn(n, 4) * scale, torch.arange(n) % 2)

def broken():
    raise ValueError("no data today")

def nothing():
    return None

def empty():
    return TensorDataset(torch.zeros(0, 4), torch.zeros(0))
"""


# --- every kind loads ---------------------------------------------------------------------------


def test_factory_calls_the_function_with_args_relative_to_the_spec_file(tmp_path):
    (tmp_path / "data.py").write_text(FACTORY)
    spec = write_spec(tmp_path / "specs", {"kind": "factory", "factory": "../data.py:make", "args": {"n": 12}})
    dataset = dataspec.load(spec, tmp_path / "elsewhere" / "model.py")
    assert len(dataset) == 12


def test_inline_spec_paths_are_relative_to_the_config(tmp_path):
    (tmp_path / "data.py").write_text(FACTORY)
    dataset = dataspec.load({"kind": "factory", "factory": "data.py:make"}, tmp_path / "nndoctor.yaml")
    assert len(dataset) == 10


def test_config_file_with_data_path_and_inline_spec(tmp_path):
    (tmp_path / "data.py").write_text(FACTORY)
    write_spec(tmp_path, {"kind": "factory", "factory": "data.py:make"})
    by_path = load_config(write_spec(tmp_path, {"model": "model.py", "data": "data.yaml"}, "a.yaml"))
    inline = load_config(write_spec(tmp_path, {"model": "model.py", "data": {"kind": "factory", "factory": "data.py:make"}}, "b.yaml"))
    for config in (by_path, inline):
        assert len(dataspec.load(config.data, config.path)) == 10


def test_tensors_pt_dict(tmp_path, make_data):
    make_data.write_tensors_pt(tmp_path / "data.pt")
    dataset = dataspec.load({"kind": "tensors", "path": "data.pt"}, tmp_path / "nndoctor.yaml")
    x, y = first(dataset)
    assert len(dataset) == 512 and x.shape == (8,) and y.shape == (1,)


@pytest.mark.parametrize(
    "content",
    [
        lambda x, y: {"inputs": x, "targets": y},
        lambda x, y: (x, y),
    ],
    ids=["inputs_targets", "tuple"],
)
def test_tensors_pt_other_layouts_and_dtypes(tmp_path, content):
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.arange(20, dtype=torch.int32) % 3
    torch.save(content(x, y), tmp_path / "d.pth")
    dataset = dataspec.load({"kind": "tensors", "path": "d.pth"}, tmp_path / "nndoctor.yaml")
    assert dataset.tensors[0].dtype == torch.float32 and dataset.tensors[1].dtype == torch.int64
    assert torch.equal(dataset.tensors[1], y.long())


def test_tensors_npz_integer_tokens_become_int64(tmp_path, make_data):
    make_data.write_tokens_npz(tmp_path / "tokens.npz")
    dataset = dataspec.load(write_spec(tmp_path, {"kind": "tensors", "path": "tokens.npz"}), tmp_path)
    x, y = dataset.tensors
    assert x.dtype == torch.int64 and y.dtype == torch.int64 and x.shape == (512, 16)


def test_torchvision_mnist_from_local_idx_files(tmp_path, make_data):
    make_data.write_mnist(tmp_path / "mnist", train=32, test=8)
    spec = {"kind": "torchvision", "class": "MNIST", "root": "mnist", "normalize": {"mean": [0.1], "std": [0.25]}}
    train = dataspec.load(spec, tmp_path / "nndoctor.yaml")
    test = dataspec.load({**spec, "train": False, "resize": [14, 14]}, tmp_path / "nndoctor.yaml")
    x, y = first(train)
    assert len(train) == 32 and len(test) == 8
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and x.min() < 0  # normalized, not 0..1
    assert first(test)[0].shape == (1, 14, 14)


def test_imagefolder_with_resize(tmp_path, make_data):
    make_data.write_imagefolder(tmp_path / "images", per_class=3)
    dataset = dataspec.load({"kind": "imagefolder", "root": "images", "resize": [8, 8]}, tmp_path / "nndoctor.yaml")
    x, y = first(dataset)
    assert len(dataset) == 12 and x.shape == (3, 8, 8) and 0 <= x.min() and x.max() <= 1
    assert sorted({int(dataset[i][1]) for i in range(12)}) == [0, 1, 2, 3]


def synthetic(tmp_path, **values):
    return dataspec.load({"kind": "synthetic", **values}, tmp_path / "nndoctor.yaml")


@pytest.mark.parametrize(
    "values, target_shape, target_dtype",
    [
        ({"task": "classification", "num_classes": 4}, (), torch.int64),
        ({"task": "binary"}, (1,), torch.float32),
        ({"task": "multilabel", "num_classes": 3}, (3,), torch.float32),
        ({"task": "regression", "num_classes": 2}, (2,), torch.float32),
    ],
    ids=["classification", "binary", "multilabel", "regression"],
)
def test_synthetic_tasks_have_standardized_inputs_and_fitting_targets(tmp_path, values, target_shape, target_dtype):
    dataset = synthetic(tmp_path, input_shape=[3, 8, 8], size=256, **values)
    x, y = dataset.tensors
    assert x.shape == (256, 3, 8, 8) and abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1
    assert y.shape[1:] == target_shape and y.dtype == target_dtype
    if target_dtype == torch.float32 and values["task"] != "regression":
        assert 0.2 < float(y.mean()) < 0.8  # both labels occur: not a constant target


def linear_fit_accuracy(features: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """Accuracy of a least-squares linear classifier (one-hot targets): high only if the labels
    are a function of the inputs; shuffled labels score near the majority-class rate."""
    features = torch.cat([features, torch.ones(len(features), 1)], dim=1)
    weights = torch.linalg.lstsq(features, nn.functional.one_hot(labels, classes).float()).solution
    return float(((features @ weights).argmax(dim=1) == labels).float().mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_float_labels_are_learnable_and_balanced(tmp_path, seed):
    x, y = synthetic(tmp_path, task="classification", input_shape=[10], num_classes=3, size=300, seed=seed).tensors
    assert torch.bincount(y, minlength=3).min() > 60
    assert linear_fit_accuracy(x, y, 3) > 0.85
    assert linear_fit_accuracy(x, y[torch.randperm(300)], 3) < 0.6


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_tokens_are_integers_in_vocab_learnable_and_balanced(tmp_path, seed):
    x, y = synthetic(tmp_path, task="classification", input_shape=[12], num_classes=3, dtype="long", vocab=20, size=300, seed=seed).tensors
    assert x.dtype == torch.int64 and 0 <= int(x.min()) and int(x.max()) < 20
    assert torch.bincount(y, minlength=3).min() > 60
    bag_of_tokens = nn.functional.one_hot(x, 20).sum(dim=1).float()
    assert linear_fit_accuracy(bag_of_tokens, y, 3) > 0.85


def test_synthetic_is_reproducible_per_seed(tmp_path):
    a, b, c = (synthetic(tmp_path, task="binary", input_shape=[5], size=32, seed=s).tensors[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- every bad spec is an InputError naming the spec ------------------------------------------------


class NotATensor:
    pass


# Files the bad-spec cases refer to, by name; any other name is made an empty folder.
CASE_FILES = {
    "data.py": lambda tmp, make_data: (tmp / "data.py").write_text(FACTORY),
    "syntax.py": lambda tmp, make_data: (tmp / "syntax.py").write_text("import torch\n\ndef make(:\n    pass\n"),
    "ab.npz": lambda tmp, make_data: np.savez(tmp / "ab.npz", a=np.zeros(3), b=np.zeros(3)),
    "uneven.pt": lambda tmp, make_data: torch.save({"x": torch.zeros(5, 2), "y": torch.zeros(4)}, tmp / "uneven.pt"),
    "object.pt": lambda tmp, make_data: torch.save({"x": torch.zeros(3), "y": NotATensor()}, tmp / "object.pt"),
    "garbage.pt": lambda tmp, make_data: (tmp / "garbage.pt").write_bytes(b"not a torch file"),
    "data.csv": lambda tmp, make_data: (tmp / "data.csv").write_text("x,y\n1,0\n"),
    "mnist": lambda tmp, make_data: make_data.write_mnist(tmp / "mnist", train=8, test=4),
}


BAD_SPECS = [
    # (id, spec (mapping or raw YAML), file the case needs, words the message must contain)
    ("bad_yaml", "kind: [tensors\n", None, "not valid YAML at line"),
    ("not_a_mapping", "- kind: tensors\n", None, "must be a mapping"),
    ("no_kind", {"path": "x.pt"}, None, "kind must be one of factory, tensors"),
    ("bad_kind", {"kind": "csv", "path": "x.csv"}, None, "not 'csv'"),
    ("unknown_key", {"kind": "tensors", "path": "x.pt", "shuffle": True}, None, "unknown key(s) shuffle"),
    ("missing_key", {"kind": "torchvision", "class": "MNIST"}, None, "needs the key(s) root"),
    ("bad_resize", {"kind": "imagefolder", "root": "img", "resize": 28}, "img", "resize: must be [height, width]"),
    ("bad_normalize", {"kind": "imagefolder", "root": "img", "normalize": {"mean": [0.5]}}, "img", "normalize: must be"),
    ("missing_file", {"kind": "tensors", "path": "nowhere.pt"}, None, "nowhere.pt is not an existing file"),
    ("wrong_suffix", {"kind": "tensors", "path": "data.csv"}, "data.csv", "neither a torch.save file"),
    ("npz_without_xy", {"kind": "tensors", "path": "ab.npz"}, "ab.npz", "holds keys a, b"),
    ("uneven_lengths", {"kind": "tensors", "path": "uneven.pt"}, "uneven.pt", "5 inputs but 4 targets"),
    ("pickled_object", {"kind": "tensors", "path": "object.pt"}, "object.pt", "cannot read"),
    ("garbage_file", {"kind": "tensors", "path": "garbage.pt"}, "garbage.pt", "cannot read"),
    ("unknown_class", {"kind": "torchvision", "class": "MNST", "root": "."}, None, "no dataset class 'MNST'"),
    ("files_missing", {"kind": "torchvision", "class": "MNIST", "root": "empty"}, "empty", "never downloads"),
    ("download_true", {"kind": "torchvision", "class": "MNIST", "root": "mnist", "download": True}, "mnist", "download: true is not allowed"),
    ("download_in_args", {"kind": "torchvision", "class": "MNIST", "root": "mnist", "args": {"download": True}}, "mnist", "download: true is not allowed"),
    ("train_not_taken", {"kind": "torchvision", "class": "SVHN", "root": ".", "train": False}, None, "takes no train argument"),
    ("bad_args", {"kind": "torchvision", "class": "MNIST", "root": "mnist", "args": {"colour": True}}, "mnist", "colour"),
    ("normalize_channels", {"kind": "torchvision", "class": "MNIST", "root": "mnist", "normalize": {"mean": [0, 0, 0], "std": [1, 1, 1]}}, "mnist", "reading the dataset (its length and first sample) raised"),
    ("empty_imagefolder", {"kind": "imagefolder", "root": "img"}, "img", "one subfolder of images per class"),
    ("root_missing", {"kind": "imagefolder", "root": "nowhere"}, None, "nowhere is not an existing folder"),
    ("factory_file_missing", {"kind": "factory", "factory": "nope.py:make"}, None, "nope.py is not an existing file"),
    ("factory_function_missing", {"kind": "factory", "factory": "data.py:build"}, "data.py", "no function 'build'; its functions are: make, broken"),
    ("factory_raises", {"kind": "factory", "factory": "data.py:broken"}, "data.py", "broken() raised ValueError: no data today"),
    ("factory_bad_args", {"kind": "factory", "factory": "data.py:make", "args": {"size": 3}}, "data.py", "unexpected keyword argument 'size'"),
    ("factory_syntax_error", {"kind": "factory", "factory": "syntax.py:make"}, "syntax.py", "syntax error at line 3"),
    ("factory_not_dataset", {"kind": "factory", "factory": "data.py:nothing"}, "data.py", "gave a NoneType"),
    ("factory_empty", {"kind": "factory", "factory": "data.py:empty"}, "data.py", "is empty"),
    ("synthetic_no_classes", {"kind": "synthetic", "task": "classification", "input_shape": [4]}, None, "needs num_classes"),
    ("synthetic_bad_task", {"kind": "synthetic", "task": "ranking", "input_shape": [4]}, None, "task: must be classification"),
    ("synthetic_tokens_no_vocab", {"kind": "synthetic", "task": "binary", "input_shape": [4], "dtype": "long"}, None, "needs vocab"),
    ("synthetic_binary_classes", {"kind": "synthetic", "task": "binary", "input_shape": [4], "num_classes": 3}, None, "one output"),
    ("synthetic_bad_shape", {"kind": "synthetic", "task": "binary", "input_shape": [4, 0]}, None, "input_shape: must be a list of positive integers"),
]


@pytest.mark.parametrize("values, needs, words", [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_file_is_one_clear_input_error(tmp_path, make_data, values, needs, words):
    if needs:
        CASE_FILES.get(needs, lambda tmp, _: (tmp / needs).mkdir())(tmp_path, make_data)
    spec = write_spec(tmp_path, values)
    with pytest.raises(InputError) as raised:
        dataspec.load(spec, tmp_path / "model.py")
    message = str(raised.value)
    assert message.startswith(f"Data spec {spec}")
    assert words in message
    assert "\n" not in message


def test_missing_spec_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nope.yaml does not exist"):
        dataspec.load(tmp_path / "nope.yaml", tmp_path / "model.py")


def test_bad_inline_spec_names_the_config(tmp_path):
    config = tmp_path / "nndoctor.yaml"
    with pytest.raises(InputError) as raised:
        dataspec.load({"kind": "tensors", "path": "missing.pt"}, config)
    assert str(raised.value).startswith(f"Config {config} (data:): path: missing.pt is not an existing file")


# --- the sample configs -------------------------------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(app, ["check", *args, "--device", "cpu"])


@pytest.mark.parametrize("sample", SOUND_SAMPLES)
def test_sound_sample_runs_through_the_cli(sample):
    result = invoke(str(SAMPLES / sample / "nndoctor.yaml"), "--only", "initial_loss")
    assert result.exit_code == 0, result.output
    assert "initial_loss" in result.output


def test_spec_file_passed_with_data_option():
    folder = SAMPLES / "tensors_npz"
    result = invoke(str(folder / "model.py"), "--data", str(folder / "data.yaml"), "--only", "initial_loss")
    assert result.exit_code == 0, result.output


def sample_dataset(sample: str):
    config = load_config(SAMPLES / sample / "nndoctor.yaml")
    return dataspec.load(config.data, config.path)


@pytest.mark.parametrize("sample", FLOAT_INPUT_SAMPLES)
def test_sound_samples_feed_standardized_float_inputs(sample):
    dataset = sample_dataset(sample)
    x = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(min(len(dataset), 256))])
    assert x.dtype == torch.float32
    channels = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() == 4 else x.reshape(-1, x.shape[-1]).T
    assert channels.mean(dim=1).abs().max() < 0.5, channels.mean(dim=1)
    assert channels.std(dim=1).min() > 0.5 and channels.std(dim=1).max() < 2, channels.std(dim=1)


@pytest.mark.parametrize(
    "sample, write",
    [
        ("tensors_pt", lambda m, tmp: m.write_tensors_pt(tmp / "data.pt")),
        ("tensors_npz", lambda m, tmp: m.write_tokens_npz(tmp / "tokens.npz")),
        ("torchvision_mnist", lambda m, tmp: m.write_mnist(tmp / "data")),
        ("imagefolder", lambda m, tmp: m.write_imagefolder(tmp / "images")),
    ],
)
def test_committed_sample_data_is_what_make_data_writes(tmp_path, make_data, sample, write):
    for path in (SAMPLES / sample).iterdir():
        if path.suffix in (".yaml", ".py"):
            (tmp_path / path.name).write_bytes(path.read_bytes())
    write(make_data, tmp_path)
    committed, regenerated = sample_dataset(sample), dataspec.load(load_config(tmp_path / "nndoctor.yaml").data, tmp_path / "nndoctor.yaml")
    assert len(committed) == len(regenerated)
    for i in range(len(committed)):
        assert all(torch.equal(torch.as_tensor(a), torch.as_tensor(b)) for a, b in zip(committed[i], regenerated[i]))


def test_sample_data_stays_small():
    data_files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix not in (".py", ".yaml", ".md", ".pyc")]
    assert sum(p.stat().st_size for p in data_files) < 1_000_000


def test_broken_sample_loads():
    result = invoke(str(SAMPLES / "broken_softmax" / "nndoctor.yaml"), "--only", "initial_loss")
    assert result.exit_code in (0, 1), result.output  # loads fine: the bugs are for the checks to find


@pytest.mark.parametrize("check_id", ["output_head", "input_normalization"])
def test_broken_sample_fails_the_checks_that_catch_its_bugs(check_id):
    result = invoke(str(SAMPLES / "broken_softmax" / "nndoctor.yaml"), "--only", check_id)
    assert result.exit_code == 1, result.output
