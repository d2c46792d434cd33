"""Slow camera pans over photos, a named frame-interpolation source (``pans``, ``pans:test``).

``pans``: slow camera pans over the photos of `gankit.data.photos.PHOTO_SPLIT` (`pans`): each
sequence is a side x side window (64, or `size`) moving by a constant whole-pixel step over
one photo (uniformly chosen): (dy, dx) uniform over the 48 integer steps with |dy|, |dx| <= 3,
not both 0 (1-3 px along each moving axis), starting uniformly where the whole path stays
inside the photo. The true in-between frame is exact: the window at the middle position.
3 channels (grey photos repeated). Train: 1,000 sequences of 9 frames (7,000 triplets) over
the train photos, seed 0; test: 100 sequences (700 triplets) over the held-out photos only,
seed 1. `Triplets.sources` names the photos used.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data.frames.triplets import SEEDS
from gankit.errors import GankitError

PAN_COUNTS = {"train": 1000, "test": 100}  # sequences; x 7 triplets each at 9 frames
PAN_FRAMES = 9
PAN_SIDE = 64
PAN_MAX_STEP = 3  # px/frame along each axis


def pans(split: str, n_seq: int, frames: int = PAN_FRAMES, side: int = PAN_SIDE,
         seed: int | None = None) -> torch.Tensor:
    """uint8 (n_seq, frames, 3, side, side): windows panning over the photos of `split` (see the
    module docstring); `seed` None is the split's fixed seed."""
    return pans_and_photos(split, n_seq, frames, side, SEEDS.get(split, 0) if seed is None else seed)[0]


def pan_paths(split: str, n_seq: int, frames: int, side: int, seed: int) -> tuple[np.ndarray, ...]:
    """For each pan: (photo index into PHOTO_SPLIT[split], top, left, dy, dx); frame t is the
    window photo[top + t dy : + side, left + t dx : + side]."""
    from gankit.data.photos import PHOTO_SPLIT, load_photos

    photos = load_photos(split)  # (H, W, 3) each, in PHOTO_SPLIT order
    reach = (frames - 1) * PAN_MAX_STEP
    for name, p in zip(PHOTO_SPLIT[split], photos):
        if min(p.shape[:2]) < side + reach:
            raise GankitError(f"pans: the photo {name!r} is {p.shape[1]}x{p.shape[0]}, too small for {frames}-frame "
                              f"pans of a {side}x{side} window (needs {side + reach} px per side); use a size "
                              f"<= {min(min(q.shape[:2]) for q in photos) - reach}")
    steps = np.array([(dy, dx) for dy in range(-PAN_MAX_STEP, PAN_MAX_STEP + 1)
                      for dx in range(-PAN_MAX_STEP, PAN_MAX_STEP + 1) if dy or dx])  # (48, 2)
    g = np.random.default_rng(seed)
    which = g.integers(0, len(photos), n_seq)
    dy, dx = steps[g.integers(0, len(steps), n_seq)].T
    hs = np.array([p.shape[0] for p in photos])[which]
    ws = np.array([p.shape[1] for p in photos])[which]
    # the window starts where its last position (start + (frames - 1) * step) is still inside
    lo_y, lo_x = np.maximum(0, -dy * (frames - 1)), np.maximum(0, -dx * (frames - 1))
    top = g.integers(lo_y, hs - side - np.maximum(0, dy * (frames - 1)) + 1)
    left = g.integers(lo_x, ws - side - np.maximum(0, dx * (frames - 1)) + 1)
    return which, top, left, dy, dx


def pans_and_photos(split: str, n_seq: int, frames: int, side: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """(the pans, the names of the photos they use, in PHOTO_SPLIT order)."""
    from gankit.data.photos import PHOTO_SPLIT, load_photos

    photos = load_photos(split)
    which, top, left, dy, dx = pan_paths(split, n_seq, frames, side, seed)
    out = torch.empty((n_seq, frames, 3, side, side), dtype=torch.uint8)
    r, t = np.arange(side), np.arange(frames)
    for k, p in enumerate(photos):
        i = np.nonzero(which == k)[0]
        rows = (top[i, None] + t * dy[i, None])[:, :, None, None] + r[:, None]  # (n_k, T, side, 1)
        cols = (left[i, None] + t * dx[i, None])[:, :, None, None] + r  # (n_k, T, 1, side)
        windows = p[rows, cols]  # (n_k, T, side, side, 3)
        out[torch.from_numpy(i)] = torch.from_numpy(np.ascontiguousarray(windows.transpose(0, 1, 4, 2, 3)))
    return out, [name for k, name in enumerate(PHOTO_SPLIT[split]) if (which == k).any()]
