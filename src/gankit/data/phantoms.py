"""Images for reconstruction: synthetic phantoms made on this machine, the Shepp-Logan phantom, or
a folder of greyscale scans, as float32 (N, 1, S, S) in [0, 1].

Random ellipse phantoms (after FBPConvNet, Jin et al. 2017, which trained on random ellipses;
this is our own recipe, stated here so that it can be reproduced):

    per image: K ~ U{5, ..., 15} ellipses, each with centre (x, y) uniform in the disk of radius
    0.6, semi-axes a, b ~ U[0.05, 0.45], rotation ~ U[0, pi), intensity ~ U[-0.4, 1.0]
    (negative: a hole in what lies below); the image (coordinates [-1, 1] across) is their sum,
    clipped to [0, 1] and cut to the inscribed circle (a CT scanner sees nothing outside it).

Drawn with numpy's PCG64 from a fixed seed per split, so the train and test phantoms never
coincide and every machine makes the same ones.

Sources (``load_recon(source, split, size)``):

- ``phantoms``: `TRAIN_COUNT` random phantoms (seed 0); ``phantoms:test``: `TEST_COUNT` (seed 1);
- ``shepp-logan``: scikit-image's Shepp-Logan phantom resized to S (anti-aliased), held out:
  no split trains on it;
- a folder: its images as the inpaint task reads them (`gankit.data.inpaint.load_inpaint`:
  train = all but ``test/``, test = ``test/``; random S x S crops), made grey (ITU-R 601), scaled to
  [0, 1] and, for CT, cut to the circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from gankit.data.inpaint import HeldImages
from gankit.errors import GankitError

RECON_SOURCES_HELP = "phantoms, phantoms:test, shepp-logan, or a folder of greyscale images (test/ held out)"
TRAIN_COUNT, TEST_COUNT = 2000, 100
SEEDS = {"train": 0, "test": 1}
RECIPE = ("random ellipse phantoms: 5-15 ellipses per image, centres in the disk of radius 0.6, semi-axes "
          "U[0.05, 0.45], angles U[0, pi), intensities U[-0.4, 1.0], summed, clipped to [0, 1], cut to the circle")


@dataclass
class ReconData(HeldImages):
    TENSORS: ClassVar[tuple[str, ...]] = ("x", "mask")
    x: torch.Tensor  # (N, 1, S, S) in [0, 1], torch's default float dtype (float32; float64 in reference runs)
    name: str
    notes: list[str] = field(default_factory=list)
    mask: torch.Tensor | None = None  # bool (S,): MRI's sampled columns, set by the task

    def __post_init__(self) -> None:
        self.x = self.x.to(torch.get_default_dtype())
        self._check_not_empty()


def circle(n: int) -> np.ndarray:
    """bool (S, S): the inscribed circle as skimage's radon(circle=True) defines it."""
    r = np.arange(n) - n // 2
    return r[:, None] ** 2 + r[None, :] ** 2 <= (n // 2) ** 2


def ellipse_phantoms(count: int, size: int, seed: int) -> np.ndarray:
    """float32 (count, size, size): the random ellipse phantoms of the module docstring."""
    return _ellipse_phantoms(count, size, seed).copy()


@lru_cache(maxsize=4)  # a run loads its split for training, its grid and every evaluation: make it once
def _ellipse_phantoms(count: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = (np.arange(size) - size // 2) / (size / 2)  # pixel centres in [-1, 1)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    out = np.zeros((count, size, size), np.float32)
    inside = circle(size)
    for i in range(count):
        img = np.zeros((size, size))
        for _ in range(rng.integers(5, 16)):
            rad, phi = 0.6 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)  # uniform in the disk
            cx, cy = rad * np.cos(phi), rad * np.sin(phi)
            a, b = rng.uniform(0.05, 0.45, 2)
            t = rng.uniform(0, np.pi)
            value = rng.uniform(-0.4, 1.0)
            dx, dy = xx - cx, yy - cy
            xr, yr = dx * np.cos(t) + dy * np.sin(t), -dx * np.sin(t) + dy * np.cos(t)
            img += value * ((xr / a) ** 2 + (yr / b) ** 2 <= 1.0)
        out[i] = np.clip(img, 0.0, 1.0) * inside
    return out


def shepp_logan(size: int) -> np.ndarray:
    """float32 (size, size): scikit-image's Shepp-Logan phantom (400 px) resized, in [0, 1]."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    return (np.clip(img, 0.0, 1.0) * circle(size)).astype(np.float32)


def load_recon(source: str, split: str = "train", size: int = 64, circle_cut: bool = True) -> ReconData:
    """`source` (see the module docstring) at `size` px for `split` ("train" or "test")."""
    base, _, tail = source.partition(":")
    if base == "phantoms":
        if tail not in ("", "train", "test"):
            raise GankitError(f"{source}: unknown split {tail!r}; expected phantoms or phantoms:test")
        split = tail or split
        count = TRAIN_COUNT if split == "train" else TEST_COUNT
        x = ellipse_phantoms(count, size, SEEDS[split])
        return ReconData(torch.from_numpy(x[:, None]), f"phantoms:{split}",
                         [f"{count} {RECIPE} (seed {SEEDS[split]}, {size} px)"])
    if base == "shepp-logan":
        if tail:
            raise GankitError(f"{source}: the Shepp-Logan phantom has no splits; write shepp-logan")
        return ReconData(torch.from_numpy(shepp_logan(size)[None, None]), "shepp-logan",
                         ["scikit-image's Shepp-Logan phantom, resized (anti-aliased)"])
    from gankit.data.dataset import convert_channels
    from gankit.data.inpaint import load_inpaint

    try:
        d = load_inpaint(source, split, size)
    except GankitError as e:
        raise GankitError(f"{e} (reconstruction sources: {RECON_SOURCES_HELP})") from None
    x = convert_channels(d.x, 1).float() / 255.0
    if circle_cut:
        x = x * torch.from_numpy(circle(size))
    return ReconData(x, source, d.notes + (["cut to the inscribed circle (CT)"] if circle_cut else []))


def load_recon_held_out(source: str, size: int, circle_cut: bool = True) -> ReconData:
    """The held-out images of a training source: phantoms:test, shepp-logan itself, a folder's test/."""
    base = source.split(":")[0]
    if base == "phantoms":
        return load_recon("phantoms:test", "test", size)
    try:
        return load_recon(source, "test", size, circle_cut)
    except GankitError as e:
        raise GankitError(f"{source}: no held-out images to evaluate on ({e})") from None
