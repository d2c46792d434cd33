"""Fashion-MNIST (Xiao et al. 2017), offline: the four IDX archives of Debian's
`dataset-fashion-mnist` package. 70,000 28 x 28 grey clothing images in 10 classes, in MNIST's
layout (60,000 train + 10,000 test), so every MNIST-shaped network and the feature net take them.

`GANKIT_FASHION_MNIST` names another folder holding the same four files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gankit.data.idx import read_idx
from gankit.errors import GankitError

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def fashion_dir() -> Path:
    return Path(os.environ.get("GANKIT_FASHION_MNIST", DEBIAN_DIR))


def fashion_available() -> bool:
    """Whether the four archives are where `load_fashion_mnist` looks (tests skip without them)."""
    root = fashion_dir()
    return all((root / f).is_file() for pair in _FILES.values() for f in pair)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) for split 'train' (60k) or 'test' (10k)."""
    root = fashion_dir()
    images, labels = (root / f for f in _FILES[split])
    if not images.is_file() or not labels.is_file():
        raise GankitError(f"fashion-mnist: {images.name if not images.is_file() else labels.name} not found in "
                          f"{root}; install Debian's package (apt-get install dataset-fashion-mnist) or set "
                          "GANKIT_FASHION_MNIST to a folder holding the four IDX .gz files")
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
        raise GankitError(f"fashion-mnist: {images} holds {x.shape}, {labels} {y.shape}; expected (N, 28, 28) "
                          "images and N labels")
    return x[:, None], y.astype(np.int64)
