"""Hole masks for image inpainting: True (1) = a missing pixel to fill, False (0) = a known pixel.

Every mask is a torch.bool tensor, (N, 1, H, W) for a batch and (1, H, W) for one user mask. The
random masks take `generator`: a numpy Generator (used as is), an int seed (`np.random.default_rng`)
or a torch.Generator (one int64 seed is drawn from it for a numpy Generator), so one seed always
gives the same masks.

- `box_masks`: one axis-aligned rectangle per mask. Its area fraction a is uniform in `area`
  = (lo, hi) (exactly lo when lo == hi), so the target is A = a * H * W pixels; its aspect ratio
  r = box width / box height is log-uniform in [1/2, 2]. The ideal height sqrt(A / r) is clipped
  into [A / W, H], so that the box fits (a clipped box keeps its area and gives up its aspect);
  the height is then rounded to whole pixels (1 to H) and the width re-derived as round(A /
  height) (1 to W), which keeps the area to within half a row of pixels. The top-left corner is
  uniform over the integer positions where the box fits.
- `stroke_masks`: DeepFill v2's free-form brush strokes (Yu et al. 2019, "Free-Form Image
  Inpainting with Gated Convolution", Algorithm 1), with the ranges of the common
  re-implementations, given for 256 px and scaled by s = min(H, W) / 256: 1-4 strokes per mask
  (`STROKES`); each stroke starts at a uniform pixel and walks 4-12 vertices (`VERTICES`), each
  segment with an angle uniform in [0, 2 pi) (reflected to 2 pi - angle on every other vertex, as
  in Algorithm 1; over the full circle this leaves the distribution unchanged), a length uniform
  in 10-40 px x s (`LENGTH`) and a brush width uniform in 12-40 px x s (`WIDTH`), rounded, at
  least 1 px. A vertex that would leave the image is clipped to its edge. Each segment is drawn
  with cv2.line at its width, plus a filled circle of radius width // 2 at both its ends so the
  joints are round. The mask is then flipped left-right with p = 0.5 and upside-down with
  p = 0.5, as the reference does. Measured over 1,000 masks (seed 0), the hole covers on average
  18.4% of a 28x28 image (sd 8.6%, range 2.0-41.6%; the 1 px floor on widths and the round joints
  weigh more there) and 15.0% of a 256x256 one (sd 7.1%, range 1.6-34.2%); seeds 1-3 give means
  within 0.2 percentage points of these.

Config strings (`parse_mask_kind`, listed by `MASK_KINDS_HELP`): ``box:A`` (a box of area fraction
exactly A, 0 < A < 1), ``box:A-B`` (area uniform in [A, B], 0 < A <= B < 1), ``stroke`` (free-form
strokes), ``mixed`` (each mask independently a box of area uniform in [0.1, 0.5] (`MIXED_BOX_AREA`)
or a stroke mask, with p = 0.5 each).

User masks (`load_mask`): an image where white = missing, read by `gankit.data.files.read_image`
(alpha dropped), made grey as the mean over its channels and thresholded at half of full scale
(grey >= 128 is missing). A mask with grey values other than 0 and 255 is kept with a note; one
of another size than the images is an error unless resized (nearest neighbour, with a note); a
mask with no missing pixel or no known pixel is an error. `masks_for_folder` pairs each image with
the mask of the same file stem. `composite` puts the fill into the holes and keeps every known
pixel bit-exactly.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.files import name_list, read_image
from gankit.errors import GankitError

Rng = torch.Generator | np.random.Generator | int

ASPECT = (0.5, 2.0)  # box width / box height, log-uniform
STROKE_REF = 256  # px: the image side that STROKE lengths and widths are given for
STROKES = (1, 4)  # strokes per mask, uniform over the integers, inclusive
VERTICES = (4, 12)  # segments per stroke, uniform over the integers, inclusive
LENGTH = (10.0, 40.0)  # px at STROKE_REF, uniform, per segment
WIDTH = (12.0, 40.0)  # px at STROKE_REF, uniform, per segment
FLIP_P = 0.5  # each of left-right and upside-down
MIXED_BOX_AREA = (0.1, 0.5)
MIXED_P_BOX = 0.5
MASK_KINDS = ("box", "stroke", "mixed")
MASK_KINDS_HELP = "box:A (0 < A < 1, the hole's area fraction), box:A-B, stroke or mixed"
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_BOX = re.compile(rf"box:{_NUM}(?:-{_NUM})?")


def numpy_rng(generator: Rng) -> np.random.Generator:
    """A numpy Generator from a numpy Generator (itself), an int seed, or a torch.Generator (one
    seed drawn from it, which advances it)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**63 - 1, (1,), generator=generator)))
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy or torch Generator or an int seed, got {type(generator).__name__}")


def box_sides(a: np.ndarray, r: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(heights, widths) in whole pixels of boxes of area fraction `a` and aspect w/h `r`, fitted
    into h x w: height sqrt(A / r) clipped into [A / w, h] and rounded, width round(A / height)."""
    target = a * h * w
    ideal = np.clip(np.sqrt(target / r), target / w, h)
    bh = np.clip(np.rint(ideal), 1, h).astype(np.int64)
    bw = np.clip(np.rint(target / bh), 1, w).astype(np.int64)
    return bh, bw


def box_masks(n: int, h: int, w: int, area: tuple[float, float] = (0.25, 0.25), generator: Rng = 0) -> Tensor:
    """(n, 1, h, w) bool: one rectangle per mask, area fraction uniform in `area`, aspect w/h
    log-uniform in [1/2, 2], fitted (see the module docstring) and placed uniformly."""
    lo, hi = area
    if not 0 < lo <= hi < 1:
        raise ValueError(f"box area must satisfy 0 < lo <= hi < 1, got {area}")
    g = numpy_rng(generator)
    a = np.full(n, lo) if lo == hi else g.uniform(lo, hi, n)
    r = np.exp(g.uniform(math.log(ASPECT[0]), math.log(ASPECT[1]), n))
    bh, bw = box_sides(a, r, h, w)
    top = g.integers(0, h - bh + 1)  # per-mask upper bounds, inclusive of h - bh
    left = g.integers(0, w - bw + 1)
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < (top + bh)[:, None])  # (n, h)
    in_cols = (cols >= left[:, None]) & (cols < (left + bw)[:, None])  # (n, w)
    return torch.from_numpy(in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def stroke_masks(n: int, h: int, w: int, generator: Rng = 0) -> Tensor:
    """(n, 1, h, w) bool: DeepFill v2 free-form brush strokes (see the module docstring)."""
    import cv2

    g = numpy_rng(generator)
    s = min(h, w) / STROKE_REF
    out = np.zeros((n, h, w), np.uint8)
    for k in range(n):
        m = out[k]
        for _ in range(g.integers(STROKES[0], STROKES[1] + 1)):
            x, y = int(g.integers(0, w)), int(g.integers(0, h))
            for i in range(g.integers(VERTICES[0], VERTICES[1] + 1)):
                angle = g.uniform(0, 2 * math.pi)
                if i % 2 == 0:
                    angle = 2 * math.pi - angle
                length = g.uniform(*LENGTH) * s
                width = max(1, round(g.uniform(*WIDTH) * s))
                nx = int(np.clip(round(x + length * math.cos(angle)), 0, w - 1))
                ny = int(np.clip(round(y + length * math.sin(angle)), 0, h - 1))
                cv2.line(m, (x, y), (nx, ny), 1, width)
                cv2.circle(m, (x, y), width // 2, 1, -1)
                cv2.circle(m, (nx, ny), width // 2, 1, -1)
                x, y = nx, ny
        if g.random() < FLIP_P:
            out[k] = m[:, ::-1]
        if g.random() < FLIP_P:
            out[k] = out[k][::-1]
    return torch.from_numpy(out.astype(bool))[:, None]


@dataclass(frozen=True)
class MaskKind:
    """A parsed mask kind: "box" (area = (lo, hi)), "stroke" (area None) or "mixed" (area = the
    box half's range, MIXED_BOX_AREA)."""

    kind: str
    area: tuple[float, float] | None = None

    def describe(self) -> str:
        if self.kind == "box":
            lo, hi = self.area
            size = f"{lo:.0%}" if lo == hi else f"{lo:.0%}-{hi:.0%} (uniform)"
            return f"one box hole of {size} of the image, aspect 1:2 to 2:1, placed uniformly"
        if self.kind == "stroke":
            return "free-form brush strokes (DeepFill v2): 1-4 strokes of 4-12 segments each"
        lo, hi = self.area
        return f"per mask, a box hole of {lo:.0%}-{hi:.0%} of the image or free-form brush strokes, p = 0.5 each"

    def sample(self, n: int, h: int, w: int, generator: Rng = 0) -> Tensor:
        """(n, 1, h, w) bool masks of this kind."""
        g = numpy_rng(generator)
        if self.kind == "box":
            return box_masks(n, h, w, self.area, g)
        if self.kind == "stroke":
            return stroke_masks(n, h, w, g)
        is_box = torch.from_numpy(g.random(n) < MIXED_P_BOX)
        out = torch.empty((n, 1, h, w), dtype=torch.bool)
        out[is_box] = box_masks(int(is_box.sum()), h, w, self.area, g)
        out[~is_box] = stroke_masks(int((~is_box).sum()), h, w, g)
        return out


def parse_mask_kind(text: str) -> MaskKind:
    """"box:0.25", "box:0.1-0.5", "stroke" or "mixed" -> a MaskKind; anything else is a GankitError."""
    t = text.strip().lower()
    if t in ("stroke", "mixed"):
        return MaskKind(t, MIXED_BOX_AREA if t == "mixed" else None)
    m = _BOX.fullmatch(t)
    if m:
        lo = float(m.group(1))
        hi = float(m.group(2)) if m.group(2) is not None else lo
        if 0 < lo <= hi < 1:
            return MaskKind("box", (lo, hi))
    raise GankitError(f"mask kind {text!r}: expected {MASK_KINDS_HELP} (0 < A <= B < 1)")


def load_mask(path: Path, size: tuple[int, int] | None = None, resize: bool = False) -> tuple[Tensor, list[str]]:
    """A user's mask image (white = missing) -> ((1, H, W) bool, notes): grey = mean over channels,
    missing where grey >= 128. `size` = the images' (H, W): another size is an error unless
    `resize` (nearest neighbour). No missing or no known pixel is an error."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: mask file not found")
    a = read_image(path)  # (H, W, C) uint8; unreadable -> GankitError naming the file
    total = a.astype(np.uint16).sum(axis=2)
    c = a.shape[2]
    notes = []
    if not np.isin(total, (0, 255 * c)).all():
        notes.append(f"{path}: mask is not binary; thresholded at 0.5 (values >= 128 count as missing)")
    mask = torch.from_numpy(total >= 128 * c)[None]  # mean >= 128, in integers
    hw = tuple(mask.shape[1:])
    if size is not None and tuple(size) != hw:
        if not resize:
            raise GankitError(f"{path}: mask is {hw[0]}x{hw[1]} but the images are {size[0]}x{size[1]} "
                              "(height x width); pass --resize-mask to resize it (nearest neighbour)")
        mask = F.interpolate(mask[None].float(), size=tuple(size), mode="nearest")[0] > 0.5
        notes.append(f"{path}: mask resized from {hw[0]}x{hw[1]} to {size[0]}x{size[1]} (height x width), "
                     "nearest neighbour")
    if not mask.any():
        raise GankitError(f"{path}: mask has no missing (white) pixels; nothing to repair")
    if mask.all():
        raise GankitError(f"{path}: every pixel of the mask is missing (white); no known pixels to repair from")
    return mask, notes


def masks_for_folder(image_paths: list[Path], mask_dir: Path) -> list[Path]:
    """The mask in `mask_dir` (not recursive) with the same file stem as each image, any suffix of
    MASK_SUFFIXES. A missing or ambiguous mask is a GankitError naming the image."""
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise GankitError(f"{mask_dir}: mask folder not found")
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(mask_dir.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MASK_SUFFIXES:
            by_stem[p.stem].append(p)
    out = []
    for image in map(Path, image_paths):
        found = by_stem.get(image.stem, [])
        if not found:
            raise GankitError(f"{image}: no mask named {image.stem} in {mask_dir} "
                              f"(looked for {image.stem} with suffix {', '.join(MASK_SUFFIXES)})")
        if len(found) > 1:
            raise GankitError(f"{image}: {len(found)} masks share its name in {mask_dir} "
                              f"({name_list([p.name for p in found])}); keep one")
        out.append(found[0])
    return out


def composite(image: Tensor, fill: Tensor | float, mask: Tensor) -> Tensor:
    """where(mask, fill, image): (N, C, H, W) `image` (float or uint8) with the holes of bool
    `mask` ((N, 1, H, W), or anything that broadcasts) taken from `fill`, on the image's scale and
    cast to its dtype (rounded and clamped for uint8). Known pixels are the image's, bit-exactly."""
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be torch.bool (True = missing), got {mask.dtype}")
    fill = torch.as_tensor(fill, device=image.device)
    if not image.is_floating_point() and fill.is_floating_point():
        info = torch.iinfo(image.dtype)
        fill = fill.round().clamp(info.min, info.max)
    return torch.where(mask.to(image.device), fill.to(image.dtype), image)
