"""Moving MNIST, a named frame-interpolation source (``moving-mnist``, ``moving-mnist:test``).

``moving-mnist``: Moving MNIST by the recipe of Srivastava et al. 2015 (`moving_mnist`): two
28x28 MNIST digits, each at a uniform random start inside a 64x64 frame, moving at a constant
velocity (speed uniform in 2-5 px/frame, direction uniform over 360 degrees), bouncing off the
edges (the velocity component normal to the edge is reflected, and so is the overshoot), drawn
at the position rounded to whole pixels and composited by pixel-wise max; 20 frames per
sequence, 1 channel. Train: 2,000 sequences (36,000 triplets, ~440 MB as uint8) of MNIST train
digits, seed 0; test: 200 sequences (3,600 triplets) of MNIST test digits, seed 1, so the test
set is fixed and no digit image is in both. Generated once, then cached under
`gankit.util.cache_dir()` as .npz (164 MB for train) keyed by `MOVING_MNIST_VERSION` and the
arguments: generating the train set takes ~2 s, loading it ~0.2 s.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from gankit.data.frames.triplets import SEEDS
from gankit.errors import GankitError

MOVING_MNIST_COUNTS = {"train": 2000, "test": 200}  # sequences; x 18 triplets each at 20 frames
MOVING_MNIST_FRAMES = 20
MOVING_MNIST_SIDE = 64
MOVING_MNIST_SPEED = (2.0, 5.0)  # px/frame, uniform
MOVING_MNIST_VERSION = "v1"  # bump when the recipe changes: it keys the cache file
DIGIT = 28  # MNIST digit side


def moving_mnist(split: str, n_seq: int, frames: int = MOVING_MNIST_FRAMES, side: int = MOVING_MNIST_SIDE,
                 seed: int | None = None, *, digits: int = 2) -> torch.Tensor:
    """uint8 (n_seq, frames, 1, side, side): `digits` MNIST digits of `split` bouncing in a side x side
    frame (see the module docstring). `seed` None is the split's fixed seed; the same arguments
    give the same sequences, bit for bit."""
    from gankit.data.mnist import load_mnist

    if split not in SEEDS:
        raise GankitError(f"unknown Moving MNIST split {split!r}; expected 'train' or 'test'")
    if side <= DIGIT:
        raise GankitError(f"side {side}: Moving MNIST needs a frame larger than its {DIGIT}x{DIGIT} digits")
    x, _ = load_mnist(split)  # uint8 (N, 1, 28, 28)
    g = np.random.default_rng(SEEDS[split] if seed is None else seed)
    which = g.integers(0, len(x), (n_seq, digits))  # digit images, drawn with replacement
    pos = digit_paths(g, n_seq, frames, digits, side - DIGIT)  # (S, T, D, 2) top-left (y, x)
    top_left = np.rint(pos).astype(np.int64)
    out = np.zeros((n_seq, frames, side, side), np.uint8)
    r = np.arange(DIGIT)
    s_idx = np.arange(n_seq)[:, None, None, None]
    t_idx = np.arange(frames)[None, :, None, None]
    for k in range(digits):
        layer = np.zeros_like(out)  # one digit per frame: plain assignment, then max with the others
        rows = (top_left[:, :, k, 0, None] + r)[:, :, :, None]  # (S, T, 28, 1)
        cols = (top_left[:, :, k, 1, None] + r)[:, :, None, :]  # (S, T, 1, 28)
        layer[s_idx, t_idx, rows, cols] = x[which[:, k], 0][:, None]  # (S, 1, 28, 28) over all T
        np.maximum(out, layer, out=out)
    return torch.from_numpy(out[:, :, None])  # (S, T, 1, side, side)


def digit_paths(g: np.random.Generator, n_seq: int, frames: int, digits: int, span: float) -> np.ndarray:
    """(n_seq, frames, digits, 2) float top-left positions (y, x) in [0, span]: a uniform start, a
    uniform direction, a speed uniform in MOVING_MNIST_SPEED, reflected at 0 and at span."""
    pos = g.uniform(0, span, (n_seq, digits, 2))
    angle = g.uniform(0, 2 * math.pi, (n_seq, digits))
    speed = g.uniform(*MOVING_MNIST_SPEED, (n_seq, digits))
    v = speed[..., None] * np.stack([np.sin(angle), np.cos(angle)], axis=-1)  # (S, D, 2) px/frame
    out = np.empty((n_seq, frames, digits, 2))
    for t in range(frames):
        out[:, t] = pos
        pos = pos + v
        low, high = pos < 0, pos > span  # a step is < span, so one reflection is enough
        pos = np.where(low, -pos, np.where(high, 2 * span - pos, pos))
        v = np.where(low | high, -v, v)
    return out


def cached_moving_mnist(split: str, n_seq: int, frames: int, side: int, seed: int) -> torch.Tensor:
    """`moving_mnist` through the cache: generating the default train set takes a few seconds."""
    from gankit.util import cache_dir, save_npz_atomic

    args = (MOVING_MNIST_VERSION, split, n_seq, frames, side, seed, MOVING_MNIST_SPEED)
    path = cache_dir() / f"moving-mnist-{split}-{hashlib.sha256(repr(args).encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return torch.from_numpy(z["clips"])
    clips = moving_mnist(split, n_seq, frames, side, seed)
    save_npz_atomic(path, {"clips": clips.numpy()})
    return clips
