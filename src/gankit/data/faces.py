"""Faces offline: the ``lfw`` and ``lfw:test`` sources, from scikit-image's bundled `lfw_subset`.

`skimage.data.lfw_subset()` ships in scikit-image's wheel (``skimage/data/lfw_subset.npy``,
nothing is downloaded): 200 grey 25 x 25 crops, of which only the **first 100 are faces**
(random faces from Labeled Faces in the Wild); the other 100 are background patches cut from the
same photos, for face-detection training. gankit uses the 100 faces only and splits them once:
a fixed permutation (numpy ``default_rng(LFW_SPLIT_SEED)``) puts 20 in ``lfw:test`` and 80 in
``lfw``. The held-out 20 are what the memorisation check (`gankit.metrics.memorization`)
compares against, so they must never be trained on.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data.dataset import Dataset
from gankit.errors import GankitError

LFW_FACES = 100  # lfw_subset's first 100 images are faces, the rest background patches
LFW_HELD_OUT = 20  # faces in lfw:test; the other 80 are lfw
LFW_SPLIT_SEED = 0  # the one seed of the split, so it is the same everywhere


def lfw_split() -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) into lfw_subset's 100 faces, each ascending."""
    perm = np.random.default_rng(LFW_SPLIT_SEED).permutation(LFW_FACES)
    return np.sort(perm[LFW_HELD_OUT:]), np.sort(perm[:LFW_HELD_OUT])


def lfw_faces() -> np.ndarray:
    """lfw_subset's 100 faces as uint8 (100, 1, 25, 25)."""
    try:
        from skimage.data import lfw_subset
    except ImportError:  # a declared dependency; only a broken install lands here
        raise GankitError("data source lfw needs scikit-image (pip install scikit-image)") from None
    x = lfw_subset()  # (200, 25, 25) float64 in [0, 1] (the docstring's "uint8" is not what it returns)
    if x.shape[0] < LFW_FACES or x.shape[1:] != (25, 25):
        raise GankitError(f"scikit-image's lfw_subset has shape {x.shape}; expected (200, 25, 25)")
    return np.round(np.clip(x[:LFW_FACES], 0.0, 1.0) * 255.0).astype(np.uint8)[:, None]


def load_lfw(source: str) -> Dataset:
    """``lfw`` (80 training faces) or ``lfw:test`` (the 20 held out)."""
    train, test = lfw_split()
    held_out = source.endswith(":test")
    keep = test if held_out else train
    note = (f"{len(keep)} of lfw_subset's {LFW_FACES} faces (25x25 grey), "
            f"{'held out' if held_out else 'the training split'} (seed {LFW_SPLIT_SEED})")
    return Dataset(torch.from_numpy(lfw_faces()[keep]), None, source, notes=[note])
