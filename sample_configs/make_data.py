"""(Re)create every data file of the sample configs, deterministically (same bytes on every run).

    python sample_configs/make_data.py

All data is synthetic: seven-segment "digits" in MNIST's idx format, small coloured shapes as PNG
files, a regression table saved with torch.save and token sequences in a NumPy archive. The
writers take their destination, so tests can build the same files in a temporary folder.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent

# Seven-segment layout on a 28x28 canvas: (row0, row1, col0, col1) of each segment, and which
# segments each digit lights (a top, b upper right, c lower right, d bottom, e lower left,
# f upper left, g middle).
SEGMENTS = {
    "a": (4, 6, 9, 19), "b": (5, 14, 17, 19), "c": (14, 23, 17, 19), "d": (22, 24, 9, 19),
    "e": (14, 23, 9, 11), "f": (5, 14, 9, 11), "g": (13, 15, 9, 19),
}
DIGITS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg")
SHAPES = ("circle", "cross", "square", "triangle")


def digit_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 28x28 images of seven-segment digits (0 background, bright strokes), randomly
    shifted and dimmed, with their labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), dtype=np.float64)
    for image, label in zip(images, labels):
        dy, dx = rng.integers(-3, 4, size=2)
        for segment in DIGITS[label]:
            r0, r1, c0, c1 = SEGMENTS[segment]
            image[r0 + dy:r1 + dy, c0 + dx:c1 + dx] = rng.uniform(160, 255)
    images += rng.normal(0, 12, size=images.shape) * (images > 0)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_mnist(root: Path, train: int = 256, test: int = 64) -> None:
    """MNIST's four idx files under root/MNIST/raw, where torchvision.datasets.MNIST(root) looks."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = digit_images(n, seed)
        # idx format: magic (0x0803 images, 0x0801 labels) and the sizes, big-endian, then bytes.
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, n) + labels.tobytes())


def shape_image(shape: str, rng: np.random.Generator, size: int = 16) -> Image.Image:
    """A shape in a random colour at a random offset on a dark, noisy background."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2 - rng.integers(-2, 3, size=(2, 1, 1))
    masks = {
        "circle": xx**2 + yy**2 <= 20,
        "cross": (np.abs(xx) <= 1) | (np.abs(yy) <= 1),
        "square": (np.abs(xx) <= 4) & (np.abs(yy) <= 4),
        "triangle": (yy >= -5) & (yy <= 4) & (np.abs(xx) <= (yy + 5) / 2),
    }
    pixels = rng.normal(40, 15, size=(size, size, 3))
    pixels[masks[shape]] = rng.uniform(120, 255, size=3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_imagefolder(root: Path, per_class: int = 16) -> None:
    """root/<shape>/<i>.png: torchvision ImageFolder's layout, one folder per class."""
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(shape, rng).save(root / shape / f"{i:02d}.png")


def write_tensors_pt(path: Path, n: int = 512, dim: int = 8) -> None:
    """A smooth regression target of standardized features, as {'x': ..., 'y': ...}."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=generator)
    w = torch.randn(dim, 1, generator=generator) / dim**0.5
    y = torch.sin(2 * x @ w) + 0.05 * torch.randn(n, 1, generator=generator)
    torch.save({"x": x, "y": y}, path)


def write_tokens_npz(path: Path, n: int = 512, length: int = 16, vocab: int = 40, classes: int = 3) -> None:
    """Token sequences (int32 ids) whose class is the vocabulary band that dominates them."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.integers(0, vocab, size=(n, length))
    band = vocab // classes
    for row, label in zip(x, y):
        row[: length // 2] = rng.integers(label * band, (label + 1) * band, size=length // 2)
    np.savez(path, x=x.astype(np.int32), y=y.astype(np.int64))


def main() -> None:
    write_mnist(HERE / "torchvision_mnist" / "data")
    write_imagefolder(HERE / "imagefolder" / "images")
    write_tensors_pt(HERE / "tensors_pt" / "data.pt")
    write_tokens_npz(HERE / "tensors_npz" / "tokens.npz")


if __name__ == "__main__":
    main()
