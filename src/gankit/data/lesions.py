"""Labelled phantoms for disease-specific synthesis: ellipse phantoms with and without a "lesion".

The bodies are `gankit.data.phantoms`' random ellipse phantoms (its recipe, its generator), drawn
from their own seeds so that they never coincide with the reconstruction task's. Our recipe on
top, stated so that it can be reproduced:

    image i is class ``lesion`` when i is odd, ``normal`` when even (balanced, interleaved). A
    lesion is one ellipse with semi-axes a, b ~ U[0.06, 0.10] and rotation ~ U[0, pi), in the
    phantoms' coordinates ([-1, 1] across the image: 2-3 px semi-axes at 64 px). Its centre is a
    pixel drawn uniformly from the body (intensity > 0.05) at least max(a, b) from the body's
    edge (Euclidean distance transform), or the body pixel farthest from its edge when none is.
    Inside it the intensity v becomes v + 0.5 where v < 0.5 and v - 0.5 otherwise: abnormal
    against whatever tissue it sits in (bright in dim tissue, dark in saturated tissue), with a
    contrast of 0.5 everywhere inside. Lesions draw from numpy's PCG64 seeded [seed, 1].

Sources (`load_lesions`), 64 x 64 grey, uint8:

- ``phantoms-lesion``: `TRAIN_COUNT` images (seed 30), half of each class;
- ``phantoms-lesion:test``: `TEST_COUNT` held out (seed 31);
- ``phantoms-lesion@N``: the first N/2 of each class of the training images (the splits nest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gankit.data.dataset import Dataset
from gankit.data.phantoms import RECIPE, ellipse_phantoms
from gankit.errors import GankitError

NAME = "phantoms-lesion"
CLASSES = ["normal", "lesion"]
SIZE = 64
TRAIN_COUNT, TEST_COUNT = 400, 200
SEEDS = {"train": 30, "test": 31}  # the reconstruction phantoms use 0 and 1
BODY = 0.05  # intensity above which a pixel is the phantom's body
AXES = (0.06, 0.10)  # lesion semi-axes, in the phantoms' [-1, 1] coordinates
CONTRAST = 0.5
LESION_RECIPE = ("odd images carry a lesion: one ellipse, semi-axes U[0.06, 0.10], angle U[0, pi), centred in the "
                 "body (intensity > 0.05) at least its larger semi-axis from the edge; inside, v -> v + 0.5 if "
                 "v < 0.5 else v - 0.5")


@dataclass(frozen=True)
class Lesion:
    """Where one lesion is, in the phantoms' coordinates (x to the right, y down, [-1, 1] across)."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def mask(self, size: int) -> np.ndarray:
        """bool (size, size): the pixels whose centres lie inside the ellipse."""
        u = (np.arange(size) - size // 2) / (size / 2)
        yy, xx = np.meshgrid(u, u, indexing="ij")
        dx, dy = xx - self.cx, yy - self.cy
        c, s = np.cos(self.angle), np.sin(self.angle)
        return ((dx * c + dy * s) / self.a) ** 2 + ((-dx * s + dy * c) / self.b) ** 2 <= 1.0


def lesion_phantoms(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[Lesion | None]]:
    """(float32 images (count, size, size) in [0, 1], int64 labels (count,), each image's `Lesion`
    or None): the module docstring's recipe."""
    from scipy.ndimage import distance_transform_edt

    x = ellipse_phantoms(count, size, seed)
    y = np.arange(count, dtype=np.int64) % 2
    rng = np.random.default_rng([seed, 1])
    u = (np.arange(size) - size // 2) / (size / 2)  # pixel centres, as the phantoms place them
    lesions: list[Lesion | None] = []
    for i in range(count):
        if not y[i]:
            lesions.append(None)
            continue
        a, b = rng.uniform(*AXES, 2)
        angle = rng.uniform(0, np.pi)
        body = x[i] > BODY
        if not body.any():  # an all-empty phantom (none in the shipped seeds): the centre of the image
            body[size // 2, size // 2] = True
        depth = distance_transform_edt(body) / (size / 2)  # distance to the body's edge, in [-1, 1] units
        deep = np.flatnonzero(depth >= max(a, b))
        k = rng.choice(deep) if len(deep) else int(depth.argmax())
        r, c = divmod(int(k), size)
        lesion = Lesion(float(u[c]), float(u[r]), float(a), float(b), float(angle))
        m = lesion.mask(size)
        v = x[i][m]
        x[i][m] = np.where(v < CONTRAST, v + CONTRAST, v - CONTRAST)
        lesions.append(lesion)
    return x, y, lesions


def load_lesions(source: str) -> Dataset:
    """``phantoms-lesion``, ``phantoms-lesion:test`` or ``phantoms-lesion@N`` as a labelled `Dataset`."""
    base, at, count = source.partition("@")
    name, _, split = base.partition(":")
    if name != NAME or split not in ("", "train", "test") or (at and split):
        raise GankitError(f"data source {source!r}: expected {NAME}, {NAME}:test or {NAME}@N")
    split = split or "train"
    n = TRAIN_COUNT if split == "train" else TEST_COUNT
    x, y, _ = lesion_phantoms(n, SIZE, SEEDS[split])
    keep = np.arange(n)
    if at:
        try:
            k = int(count)
        except ValueError:
            raise GankitError(f"data source {source!r}: expected {NAME}@N with N a whole number, e.g. {NAME}@16") from None
        if k < 2 or k % 2 or k > n:
            raise GankitError(f"data source {source!r}: N must be even (N/2 per class), from 2 to {n}")
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:k // 2] for c in range(2)]))
    img = torch.from_numpy(np.round(x[keep] * 255).astype(np.uint8)[:, None])  # (N, 1, S, S)
    note = (f"{len(keep)} {NAME} images ({split} split, seed {SEEDS[split]}, {SIZE} px, "
            f"{len(keep) // 2} per class {'/'.join(CLASSES)}): bodies are {RECIPE}; {LESION_RECIPE}")
    return Dataset(img, torch.from_numpy(y[keep]), source, classes=list(CLASSES), notes=[note])
