"""High-resolution images for super-resolution, and the one operator that makes their LR inputs.

`load_sr(source, scale, patch, split)` returns an `SRData`: the HR images as uint8. A model
learns LR -> HR where LR = `downscale(HR, scale)`, computed on the fly (on the device) from each
batch, so only HR is stored. Training batches are `random_patches(data.hr, n, data.patch, g)`.

What `SRData.hr` holds:

- training splits: one uint8 (N, C, patch, patch) tensor (or (N, 1, 28, 28) for MNIST), small
  enough to sit on the device whole.
- ``mnist:test``: the (10000, 1, 28, 28) digits, one tensor as for training.
- ``photos:test`` and a folder's ``test`` split: a **list** of uint8 (C, H, W) tensors, one per
  held-out image, each kept whole (sizes differ, so they cannot stack): centre-cropped to at most
  `TEST_MAX_SIDE` (256) per side, to keep evaluation cheap on a CPU, then to a multiple of
  `scale` so that LR = HR / scale exactly.

Sources (``NAME`` is split train, ``NAME:test`` split test):

- ``mnist``: the 28x28 digits (1 channel, labels kept in `y`), whole: patch must be 28, scale 2
  (14 -> 28) or 4 (7 -> 28); 3 does not divide 28.
- ``photos``: the natural photos of `gankit.data.photos.PHOTO_SPLIT` (3 channels; grey photos
  repeated), the train photos for ``photos`` and only the held-out ones for ``photos:test``.
- a folder: train = every image under it (recursively) except those in its ``test/`` and
  ``val/`` subfolders, or only ``train/`` when that subfolder exists; split ``test`` (any other
  name likewise) = the images in that subfolder. Images read as in `gankit.data.files`
  (unreadable ones skipped with a note unless `strict`). A training image smaller than the patch
  is an error naming it: a patch pool would silently ignore it otherwise.

Training pool (``photos`` and folders): `POOL_SIZE` (4,000) patches of patch x patch, drawn once
with the fixed seed `POOL_SEED`: each from a uniformly chosen image (as EDSR samples DIV2K, not in
proportion to area), at a uniformly random position, in one of the 8 flips/rotations by 90
degrees chosen uniformly. The same arguments give the same pool, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.files import LazyImages, image_header, list_images, name_list, read_folder, unreadable_note
from gankit.media.medical import folder_slices, is_medical
from gankit.errors import GankitError

SR_SOURCES_HELP = ("mnist, mnist:test, photos, photos:test, or a folder of images (a test/ subfolder holds "
                   "its held-out images)")
SCALES = (2, 3, 4)
POOL_SIZE = 4000  # training patches kept on the device: 4000 x 3 x 96 x 96 uint8 = 110 MB
POOL_SEED = 0
TEST_MAX_SIDE = 256  # held-out images are centre-cropped to at most this per side
HELD_OUT = ("test", "val")  # subfolders that a folder's training split never reads


@dataclass
class SRData:
    hr: torch.Tensor | list[torch.Tensor]  # uint8 (N, C, H, W), or a list of (C, H, W) whole test images
    scale: int  # 2, 3 or 4: LR side = HR side // scale
    name: str  # the source as the user named it
    patch: int  # HR patch side of training batches (LR patch = patch // scale)
    y: torch.Tensor | None = None  # int64 (N,) labels (MNIST digits), or None
    notes: list[str] = field(default_factory=list)  # what loading skipped, cropped or drew
    images: list[str] = field(default_factory=list)  # names of the source images (photos, files)

    def __post_init__(self) -> None:
        if len(self.hr) == 0:
            raise GankitError(f"{self.name}: no images")
        if self.y is not None and len(self.y) != len(self.hr):
            raise GankitError(f"{self.name}: {len(self.hr)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.hr)

    @property
    def channels(self) -> int:
        return int(self.hr[0].shape[-3])

    def to(self, device: torch.device | str) -> SRData:
        self.hr = [x.to(device) for x in self.hr] if isinstance(self.hr, list) else self.hr.to(device)
        self.y = None if self.y is None else self.y.to(device)
        return self

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints). `shape` is
        one HR example's (C, H, W), None for a list of whole images of different sizes."""
        shape = None if isinstance(self.hr, list) else list(self.hr.shape[1:])
        return {"name": self.name, "scale": self.scale, "patch": self.patch, "channels": self.channels,
                "shape": shape, "count": len(self.hr), "images": len(self.images)}


def load_sr(source: str, scale: int, patch: int, split: str = "train", strict: bool = False, *,
            pool: int = POOL_SIZE, max_side: int | None = TEST_MAX_SIDE) -> SRData:
    """Load `source` (see the module docstring) for `split`. `pool` is the number of training
    patches drawn from photos or a folder; `max_side` bounds the side of held-out images (None:
    whole). `strict` makes the first unreadable image of a folder an error instead of a skip."""
    if scale not in SCALES:
        raise GankitError(f"scale {scale!r}: expected one of {', '.join(map(str, SCALES))}")
    base, _, tail = source.partition(":")
    if base in ("mnist", "photos"):
        if tail not in ("", "train", "test"):
            raise GankitError(f"{source}: unknown split {tail!r}; expected {base} or {base}:test")
        split = tail or split
        if split not in ("train", "test"):
            raise GankitError(f"{source}: unknown split {split!r}; expected 'train' or 'test'")
    if base == "mnist":
        return _mnist(source, split, scale, patch)
    _check_patch(patch, scale)
    if base == "photos":
        from gankit.data.photos import PHOTO_SPLIT, load_photos

        names = list(PHOTO_SPLIT[split])
        arrays = load_photos(split)  # (H, W, 3) each, in PHOTO_SPLIT order
        return _assemble(source, split, arrays, names, scale, patch, pool, max_side, [], "photo")
    return _folder(Path(source).expanduser(), source, split, scale, patch, strict, pool, max_side)


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H - H % scale, W - W % scale): the bottom and right rows go."""
    H, W = x.shape[-2:]
    return x[..., :H - H % scale, :W - W % scale]


def downscale(hr: torch.Tensor, scale: int, chunk: int = 1024) -> torch.Tensor:
    """THE operator that makes LR from HR, in training and in evaluation (gankit.metrics.sr
    re-exports it): modcrop to a multiple of `scale`, then torch's antialiased bicubic resize by
    1/scale (`F.interpolate(mode="bicubic", antialias=True, align_corners=False)`, which uses
    PIL's / MATLAB's kernel, Keys a = -0.5, widened by the scale), in chunks to bound memory, on
    hr's device. uint8 in -> uint8 out (rounded, clamped); float in -> float out. Score the
    result against `modcrop(hr, scale)`. (PIL's own resize differs by rounding only: it keeps
    8 bits between its two passes; about 1 pixel in 8 differs, mostly by 1 level.)"""
    hr = modcrop(hr, scale)
    n, c, h, w = hr.shape
    out = []
    for part in hr.split(chunk):
        lr = F.interpolate(part.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True,
                           align_corners=False)
        out.append(lr.round_().clamp_(0, 255).to(torch.uint8) if hr.dtype == torch.uint8 else lr.to(hr.dtype))
    return torch.cat(out)


def random_patches(hr: torch.Tensor, n: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    """n random patch x patch crops of (N, C, H, W) `hr`: each from a uniformly chosen example at a
    uniformly random position: (n, C, patch, patch), hr's dtype, on hr's device (where `generator`
    must live). With patch = H = W it is a batch of whole examples drawn with replacement."""
    num, c, h, w = hr.shape
    if patch > h or patch > w:
        raise ValueError(f"random_patches: patch {patch} is larger than the examples ({h}x{w})")
    dev = hr.device
    i = torch.randint(num, (n,), generator=generator, device=dev)
    if patch == h == w:
        return hr[i]
    top = torch.randint(h - patch + 1, (n,), generator=generator, device=dev)
    left = torch.randint(w - patch + 1, (n,), generator=generator, device=dev)
    r = torch.arange(patch, device=dev)
    rows = (top[:, None] + r)[:, None, :, None]  # (n, 1, p, 1)
    cols = (left[:, None] + r)[:, None, None, :]  # (n, 1, 1, p)
    ch = torch.arange(c, device=dev)[None, :, None, None]  # (1, C, 1, 1)
    return hr[i[:, None, None, None], ch, rows, cols]  # (n, C, p, p)


def patch_pool(arrays: list[np.ndarray], n: int, patch: int, seed: int = POOL_SEED) -> torch.Tensor:
    """n patches from uint8 (H, W, C) images (one C for all), each at least patch x patch: a uniform
    image, a uniform position, one of the 8 flips/rotations by 90 degrees. -> uint8 (n, C, p, p)."""
    g = np.random.default_rng(seed)
    shapes = np.array(image_shapes(arrays))  # (N, 3): H, W, C
    which = g.integers(0, len(arrays), n)
    top = g.integers(0, shapes[:, 0][which] - patch + 1)
    left = g.integers(0, shapes[:, 1][which] - patch + 1)
    turn = g.integers(0, 8, n)  # k % 4 quarter turns, then a left-right flip if k >= 4
    out = torch.empty((n, int(shapes[0, 2]), patch, patch), dtype=torch.uint8)
    r = np.arange(patch)
    for k in np.unique(which):  # each image drawn from decoded once (a LazyImages: only these)
        a, i = arrays[int(k)], np.nonzero(which == k)[0]
        crops = a[top[i, None, None] + r[:, None], left[i, None, None] + r]  # (n_k, p, p, C)
        out[torch.from_numpy(i)] = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    for k in range(1, 8):
        i = torch.from_numpy(np.nonzero(turn == k)[0])
        t = torch.rot90(out[i], k % 4, dims=(2, 3))
        out[i] = t.flip(3) if k >= 4 else t
    return out


# -- sources ---------------------------------------------------------------------------------

def _mnist(source: str, split: str, scale: int, patch: int) -> SRData:
    from gankit.data.mnist import load_mnist

    if scale == 3:
        raise GankitError(f"{source}: scale 3 does not divide the 28x28 digits; use scale 2 (14 -> 28) "
                          "or 4 (7 -> 28)")
    if patch != 28:
        raise GankitError(f"{source}: patch {patch}; MNIST trains on whole digits, so the patch is 28")
    x, y = load_mnist(split)  # uint8 (N, 1, 28, 28), int64 (N,)
    name = "mnist" if split == "train" else "mnist:test"
    return SRData(torch.from_numpy(x), scale, name, patch, y=torch.from_numpy(y))


def _check_patch(patch: int, scale: int) -> None:
    if not isinstance(patch, int) or patch < scale or patch % scale:
        raise GankitError(f"patch {patch!r}: the HR patch side must be a positive multiple of the scale {scale} "
                          f"(e.g. 96: {96 // scale}x{96 // scale} LR patches)")


def _folder(root: Path, name: str, split: str, scale: int, patch: int, strict: bool, pool: int,
            max_side: int | None) -> SRData:
    names, arrays, notes = folder_arrays(root, name, split, strict, "super-resolution", SR_SOURCES_HELP)
    return _assemble(name, split, arrays, names, scale, patch, pool, max_side, notes, "image", root)


def folder_arrays(root: Path, name: str, split: str, strict: bool, what: str,
                  accepted: str) -> tuple[list[str], list[np.ndarray], list[str]]:
    """A folder's images of `split` (the module docstring's rule: train = all but test/ and val/,
    or train/; any other split = that subfolder) as uint8 (H, W, C) arrays, one C for all (grey
    only if every image is grey), with their names relative to `root` and notes on what was
    skipped. `what` and `accepted` name the task's data in the errors. A training split of more
    than LAZY_FROM images comes as `LazyImages` (headers read, decoded when indexed): its crop
    pool decodes only the images it draws from, so a large folder costs neither the memory nor
    the time of decoding it whole."""
    if not root.is_dir():
        if root.is_file() and is_medical(root):
            if split != "train":
                raise GankitError(f"{name}: one scan has no held-out {split} slices; put the training scans in a "
                                  f"folder and the held-out ones in its {split}/ subfolder")
            _, names, arrays, notes = folder_slices([root], root.parent)
            return names, arrays, notes
        if root.exists():
            raise GankitError(f"{name}: is a file; {what} data is {accepted}")
        if "/" in name or "\\" in name or "." in name:
            raise GankitError(f"{name}: no such folder; {what} data is {accepted}")
        raise GankitError(f"unknown {what} data source {name!r}; expected {accepted}")
    if split != "train":
        if not (root / split).is_dir():
            raise GankitError(f"{root}: no {split}/ subfolder; the held-out images of split {split!r} go in "
                              f"{root / split}")
        paths, other = list_images(root / split, scans=True)
    elif (root / "train").is_dir():
        paths, other = list_images(root / "train", scans=True)
    else:
        paths, other = list_images(root, scans=True)  # an empty folder is an error naming it
        paths = [p for p in paths if p.relative_to(root).parts[0] not in HELD_OUT]  # never train on them
        if not paths:
            raise GankitError(f"{root}: no training images outside {'/, '.join(HELD_OUT)}/; put them in {root} "
                              "or its train/ subfolder")
    if split == "train" and len(paths) > LAZY_FROM and not any(is_medical(p) for p in paths):
        return _lazy(paths, root, strict, other)
    _, names, arrays, bad, scan_notes = read_folder(paths, root, strict)  # scans' slices read whole
    if any(a.shape[2] == 3 for a in arrays):  # one channel count: grey only if every image is grey
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    notes = [n for n in (f"skipped {other} non-image files" if other else None, unreadable_note(bad, root),
                         *scan_notes) if n]
    return names, arrays, notes


LAZY_FROM = 2 * POOL_SIZE  # training folders with more images are read lazily (only pool images decoded)


def _lazy(paths: list[Path], root: Path, strict: bool, other: int) -> tuple[list[str], LazyImages, list[str]]:
    """`folder_arrays` for a large training folder: headers only (sizes, grey or colour), each image
    decoded when a crop pool draws from it. Unreadable headers are skipped as unreadable images are."""
    keep, shapes, bad = [], [], []
    for p in paths:
        try:
            shapes.append(image_header(p))
            keep.append(p)
        except GankitError:
            if strict:
                raise
            bad.append(p)
    if 2 * len(bad) > len(paths):
        raise GankitError(f"{root}: {len(bad)} of {len(paths)} images are unreadable "
                          f"({name_list([p.relative_to(root).as_posix() for p in bad])})")
    channels = 3 if any(c == 3 for _, _, c in shapes) else 1
    notes = [n for n in (f"skipped {other} non-image files" if other else None, unreadable_note(bad, root),
                         f"{len(keep):,} images: sizes read from their headers, each decoded only if a crop is drawn from it")
             if n]
    return [p.relative_to(root).as_posix() for p in keep], LazyImages(keep, shapes, channels), notes


def image_shapes(arrays) -> list[tuple[int, ...]]:
    """(H, W, C) of each image: a LazyImages' from headers, else the arrays'."""
    return arrays.shapes if isinstance(arrays, LazyImages) else [a.shape for a in arrays]


def _assemble(name: str, split: str, arrays: list[np.ndarray], names: list[str], scale: int, patch: int,
              pool: int, max_side: int | None, notes: list[str], what: str, root: Path | None = None) -> SRData:
    """Training: a patch pool from the images; any other split: each image whole, cropped."""
    if split == "train":
        shapes = image_shapes(arrays)
        small = [(n, s) for n, s in zip(names, shapes) if min(s[:2]) < patch]
        if small:
            n, s = small[0]
            fit = min(min(t[:2]) for t in shapes) // scale * scale
            more = f" ({len(small) - 1} more like it)" if len(small) > 1 else ""
            raise GankitError(f"{_who(name, n, what, root)} is {s[1]}x{s[0]} (width x height){more}, "
                              f"smaller than the "
                              f"{patch}x{patch} HR patch; use a patch <= {fit} or remove the smaller images")
        hr = patch_pool(arrays, pool, patch)
        notes.append(f"drew {pool} random {patch}x{patch} patches (seed {POOL_SEED}, random flips and 90-degree "
                     f"rotations) from {len(names)} {what}s ({name_list(names)})")
        return SRData(hr, scale, name, patch, notes=notes, images=names)
    hr, cropped = [], 0
    for n, a in zip(names, arrays):
        h, w = a.shape[:2]
        th, tw = (min(h, max_side), min(w, max_side)) if max_side else (h, w)
        th, tw = th // scale * scale, tw // scale * scale
        if th == 0 or tw == 0:
            raise GankitError(f"{_who(name, n, what, root)} is {w}x{h} (width x height), smaller than the "
                              f"scale {scale}")
        top, left = (h - th) // 2, (w - tw) // 2
        hr.append(torch.from_numpy(np.ascontiguousarray(a[top:top + th, left:left + tw].transpose(2, 0, 1))))
        cropped += (th, tw) != (h, w)
    if cropped:
        bound = f"at most {max_side}x{max_side} and " if max_side else ""
        notes.append(f"centre-cropped {cropped} of {len(hr)} {what}s to {bound}a multiple of the scale {scale}")
    return SRData(hr, scale, name, patch, notes=notes, images=names)


def _who(name: str, image: str, what: str, root: Path | None) -> str:
    """How an error names one image: 'ROOT/sub/b.png:' or "photos: the photo 'page'"."""
    return f"{root / image}:" if root is not None else f"{name}: the {what} {image!r}"
