"""Two-domain image data for translation (pix2pix on paired data, CycleGAN on unpaired data).

`load_pairs(source, split)` returns a `PairedData`: domain A and domain B as uint8
(N, C, H, W), each with its own channel count, and whether b[i] is a[i]'s target.

Named sources (``NAME`` is split train, ``NAME:test`` split test):

- ``edges2mnist``: paired. A = the edge map of an MNIST digit, B = the digit (train: MNIST's
  60,000 train images, test: its 10,000 test images). The edge operator (`edge_map`): the Sobel
  gradient of the uint8 digit (3x3 kernels [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] and its
  transpose, zero padding), thresholded at magnitude >= 510, half the response to a full
  0 -> 255 step (4 x 255), into a binary {0, 255} map: a closed outline of each stroke. The
  integer test gx^2 + gy^2 >= 510^2 is exact, so the map is reproducible bit for bit.
- ``mnist2mnistm``: unpaired. A = MNIST digits (1 channel), B = MNIST-M-style digits (3 channels)
  by the recipe of Ganin & Lempitsky 2015: for each digit a uniformly random 28x28 crop of a
  uniformly chosen colour photo, blended as |crop - digit| per channel (the digit's grey levels
  0-255, not binarised as some re-creations do). The textures differ from the original's
  BSDS500 photos: they are the colour photos of `gankit.data.photos.PHOTO_SPLIT` (train:
  astronaut, coffee, retina, motorcycle_left, motorcycle_right; test: chelsea, rocket,
  immunohistochemistry), so the test domain B has textures never seen in training. The two
  domains come from disjoint halves of the MNIST split (`mnistm_halves`: train A = images
  0-29,999, B = 30,000-59,999; test A = 0-4,999, B = 5,000-9,999), so no digit image is in both.
  Fixed seed; B is cached under `gankit.util.cache_dir()` (generating it takes ~2 s).

Folders (split ``train`` or ``test``; any other split name works the same way, e.g. ``val``):

- ``ROOT/trainA/`` + ``ROOT/trainB/`` (``testA/`` + ``testB/``): unpaired (CycleGAN's layout).
- ``ROOT/A/`` + ``ROOT/B/`` (or ``ROOT/train/A`` + ``ROOT/train/B``; ``ROOT/test/A`` +
  ``ROOT/test/B``): paired by file name, the extension aside (``A/x.png`` with ``B/x.jpg``).
- ``ROOT/train/*.jpg`` (``ROOT/test/``), or images directly in ``ROOT`` for train: side by side
  AB images (pix2pix's datasets): each is A | B, width = 2 x height, cut in the middle.

Images read as in `gankit.data.files`: unreadable ones are skipped with one note (a pair loses
both halves) unless `strict`; more than half of a folder unreadable is an error. Mixed sizes are
resized to the most common one, and domain B to domain A's size, with a note.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gankit.data.dataset import center_crop_square
from gankit.data.files import list_images, name_list, read_images, stack_images, unreadable_note
from gankit.data.mnist import load_mnist
from gankit.errors import GankitError
from gankit.media.images import resize_uint8
from gankit.util import cache_dir, save_npz_atomic

PAIR_SOURCES_HELP = ("edges2mnist[:test] (paired), mnist2mnistm[:test] (unpaired), or a folder holding "
                     "A/ + B/ with the same file names (paired; test/A + test/B for test), side-by-side AB images "
                     "in train/ and test/ (paired), or trainA/ + trainB/ and testA/ + testB/ (unpaired)")
NAMED = ("edges2mnist", "mnist2mnistm")
EDGE_THRESHOLD = 510  # Sobel magnitude: half the response to a full 0 -> 255 step (4 x 255)
MNISTM_SEED = 0
MNISTM_VERSION = "v1"  # bump when the recipe changes: it keys the cache file


@dataclass
class PairedData:
    a: torch.Tensor  # uint8 (N, Ca, H, W): domain A
    b: torch.Tensor  # uint8 (M, Cb, H, W): domain B; paired => M == N and b[i] is a[i]'s target
    paired: bool
    name: str  # the source as the user named it
    y_a: torch.Tensor | None = None  # int64 (N,) labels of A's examples (e.g. the digit), or None
    y_b: torch.Tensor | None = None  # int64 (M,)
    notes: list[str] = field(default_factory=list)  # what loading skipped, resized or converted
    resident = True  # held whole on a device (gankit.data.stream_pairs.StreamedPairs is not)

    def __post_init__(self) -> None:
        if len(self.a) == 0 or len(self.b) == 0:
            raise GankitError(f"{self.name}: domain {'A' if len(self.a) == 0 else 'B'} is empty")
        if self.paired and len(self.a) != len(self.b):
            raise GankitError(f"{self.name}: paired data with {len(self.a)} A images but {len(self.b)} B images")
        for y, x, side in ((self.y_a, self.a, "A"), (self.y_b, self.b, "B")):
            if y is not None and len(y) != len(x):
                raise GankitError(f"{self.name}: {len(x)} {side} images but {len(y)} labels")

    def to(self, device: torch.device | str) -> PairedData:
        self.a, self.b = self.a.to(device), self.b.to(device)
        self.y_a = None if self.y_a is None else self.y_a.to(device)
        self.y_b = None if self.y_b is None else self.y_b.to(device)
        return self

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "paired": self.paired, "shape_a": list(self.a.shape[1:]),
                "shape_b": list(self.b.shape[1:]), "count_a": len(self.a), "count_b": len(self.b)}


def require_paired(data: PairedData, who: str) -> None:
    """A one-line error when `who` (e.g. 'pix2pix') is given unpaired data."""
    if data.paired:
        return
    what = "MNIST and MNIST-M digits of different images" if data.name.startswith("mnist2mnistm") \
        else "trainA/ and trainB/"
    raise GankitError(f"{data.name}: holds unpaired domains ({what}); {who} needs paired data: edges2mnist, "
                      "A/ and B/ with the same file names, or side-by-side AB images")


def load_pairs(source: str, split: str = "train", resolution: int | None = None,
               strict: bool = False) -> PairedData:
    """Load `source` (see the module docstring) for `split`, squared to `resolution` if given.
    `strict` makes the first unreadable image an error instead of a skipped file."""
    base, _, tail = source.partition(":")
    if base in NAMED:
        if tail not in ("", "train", "test"):
            raise GankitError(f"{source}: unknown split {tail!r}; expected {base} or {base}:test")
        split = tail or split
        if split not in ("train", "test"):
            raise GankitError(f"{source}: unknown split {split!r}; expected 'train' or 'test'")
        data = edges2mnist(split) if base == "edges2mnist" else mnist2mnistm(split)
    else:
        data = _folder(Path(source).expanduser(), source, split, strict)
    return _conform(data, resolution)


# -- edges2mnist -----------------------------------------------------------------------------

def edge_map(x: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> binary {0, 255} uint8 (N, C, H, W): Sobel magnitude >= EDGE_THRESHOLD."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h, w)
    out = np.empty_like(flat)
    for s in range(0, len(flat), 4096):  # chunks keep the int32 temporaries small
        p = np.pad(flat[s:s + 4096].astype(np.int32), ((0, 0), (1, 1), (1, 1)))  # (n, H+2, W+2)
        dx = p[:, :, 2:] - p[:, :, :-2]  # (n, H+2, W): horizontal difference, then vertical [1, 2, 1]
        gx = dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]
        sy = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # horizontal [1, 2, 1], then vertical difference
        gy = sy[:, 2:] - sy[:, :-2]
        out[s:s + 4096] = np.where(gx * gx + gy * gy >= EDGE_THRESHOLD ** 2, 255, 0)
    return out.reshape(n, c, h, w)


def edges2mnist(split: str) -> PairedData:
    x, y = load_mnist(split)  # uint8 (N, 1, 28, 28), int64 (N,)
    labels = torch.from_numpy(y)
    return PairedData(torch.from_numpy(edge_map(x)), torch.from_numpy(x), True, _named("edges2mnist", split),
                      y_a=labels, y_b=labels.clone())


# -- mnist2mnistm ----------------------------------------------------------------------------

def mnistm_halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into an MNIST split of n images: (domain A's, domain B's), disjoint."""
    return np.arange(n // 2), np.arange(n // 2, n)


def mnistm_draws(n: int, photos: list[np.ndarray], seed: int, size: int = 28) -> tuple[np.ndarray, ...]:
    """For each of n digits: (which photo, crop top, crop left), uniform over photos and positions."""
    g = np.random.default_rng(seed)
    which = g.integers(0, len(photos), n)
    hs = np.array([p.shape[0] for p in photos])[which]
    ws = np.array([p.shape[1] for p in photos])[which]
    return which, g.integers(0, hs - size + 1), g.integers(0, ws - size + 1)


def mnistm_blend(digits: np.ndarray, photos: list[np.ndarray], which: np.ndarray, top: np.ndarray,
                 left: np.ndarray) -> np.ndarray:
    """uint8 (N, 1, s, s) digits and (H, W, 3) photos -> uint8 (N, 3, s, s): |crop - digit|."""
    n, s = len(digits), digits.shape[-1]
    out = np.empty((n, 3, s, s), np.uint8)
    r = np.arange(s)
    for k, photo in enumerate(photos):
        i = np.nonzero(which == k)[0]
        crops = photo[top[i, None, None] + r[:, None], left[i, None, None] + r]  # (n_k, s, s, 3)
        diff = np.abs(crops.astype(np.int16) - digits[i, 0, :, :, None])  # digit broadcast to 3 channels
        out[i] = diff.astype(np.uint8).transpose(0, 3, 1, 2)
    return out


def mnist2mnistm(split: str) -> PairedData:
    from gankit.data.photos import PHOTO_SPLIT, load_photos

    x, y = load_mnist(split)
    ia, ib = mnistm_halves(len(x))
    # The cache key names the recipe version and the photos, so a changed split is never served stale.
    key = hashlib.sha256(repr((MNISTM_VERSION, MNISTM_SEED, PHOTO_SPLIT[split])).encode()).hexdigest()[:12]
    path = cache_dir() / f"mnistm-{split}-{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            b = z["b"]
    else:
        photos = load_photos(split, colour_only=True)
        b = mnistm_blend(x[ib], photos, *mnistm_draws(len(ib), photos, MNISTM_SEED))
        save_npz_atomic(path, {"b": b})
    return PairedData(torch.from_numpy(x[ia]), torch.from_numpy(b), False, _named("mnist2mnistm", split),
                      y_a=torch.from_numpy(y[ia]), y_b=torch.from_numpy(y[ib]))


def _named(base: str, split: str) -> str:
    return base if split == "train" else f"{base}:{split}"


# -- folders ---------------------------------------------------------------------------------

def _folder(root: Path, name: str, split: str, strict: bool) -> PairedData:
    """Pick the layout from the subfolders present (see the module docstring)."""
    kind, a, b = folder_layout(root, name, split)
    if kind == "unpaired":
        return _unpaired(a, b, root, name, strict)
    if kind == "paired":
        return _paired_folders(a, b, root, name, strict)
    return _side_by_side(a, root, name, strict, recursive=kind == "side")


def folder_layout(root: Path, name: str, split: str) -> tuple[str, Path, Path | None]:
    """(layout, A's folder, B's folder) of a folder source's `split`: "unpaired" (trainA/ + trainB/),
    "paired" (A/ + B/), "side" (side-by-side AB images in split/) or "side-flat" (in ROOT itself)."""
    if not root.is_dir():
        if root.exists():
            raise GankitError(f"{name}: is a file; paired data is {PAIR_SOURCES_HELP}")
        if "/" in name or "\\" in name or "." in name:
            raise GankitError(f"{name}: no such folder; paired data is {PAIR_SOURCES_HELP}")
        raise GankitError(f"unknown paired data source {name!r}; expected {PAIR_SOURCES_HELP}")
    if (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir():
        _both(root / f"{split}A", root / f"{split}B")
        return "unpaired", root / f"{split}A", root / f"{split}B"
    for base in (root / split, root) if split == "train" else (root / split,):
        if (base / "A").is_dir() or (base / "B").is_dir():
            _both(base / "A", base / "B")
            return "paired", base / "A", base / "B"
    if (root / split).is_dir():
        return "side", root / split, None
    if split == "train" and any(p.is_file() for p in root.iterdir()):
        return "side-flat", root, None  # not into test/ etc.
    empty = " (the folder is empty)" if not any(root.iterdir()) else ""
    raise GankitError(f"{root}: no {split} data{empty}: expected {split}A/ + {split}B/, {split}/A/ + {split}/B/, "
                      f"or side-by-side AB images in {split}/")


def _both(dir_a: Path, dir_b: Path) -> None:
    missing = [d for d in (dir_a, dir_b) if not d.is_dir()]
    if missing:
        have = dir_b if missing[0] == dir_a else dir_a
        raise GankitError(f"{missing[0]}: no such folder, but {have.name}/ is there; "
                          f"the two domains need {dir_a.name}/ and {dir_b.name}/ side by side")


def _unpaired(dir_a: Path, dir_b: Path, root: Path, name: str, strict: bool) -> PairedData:
    xs, notes, bad = [], [], []
    for d in (dir_a, dir_b):
        paths, other = list_images(d)
        arrays, unreadable = read_images(paths, root, strict)
        x, resized = stack_images([a for a in arrays if a is not None])
        xs.append(x)
        bad += unreadable
        notes += [f"{d.name}/: {n}" for n in (f"skipped {other} non-image files" if other else None, resized) if n]
    return PairedData(xs[0], xs[1], False, name, notes=[n for n in [unreadable_note(bad, root)] if n] + notes)


def paired_files(dir_a: Path, dir_b: Path) -> tuple[list[Path], list[Path], int]:
    """(A's files, their B pairs, non-image files passed over): matched by name, the extension aside."""
    (pa, other_a), (pb, other_b) = list_images(dir_a), list_images(dir_b)
    ka, kb = _by_stem(pa, dir_a), _by_stem(pb, dir_b)
    only_a, only_b = sorted(ka.keys() - kb.keys()), sorted(kb.keys() - ka.keys())
    if only_a or only_b:
        raise GankitError(f"{dir_a.parent}: A/ and B/ do not pair up: {len(only_a)} in A/ have no match in B/"
                          f"{f' ({name_list(only_a)})' if only_a else ''}, {len(only_b)} in B/ have none in A/"
                          f"{f' ({name_list(only_b)})' if only_b else ''}; paired images need the same file "
                          "name (the extension aside) in both")
    keys = sorted(ka)
    return [ka[k] for k in keys], [kb[k] for k in keys], other_a + other_b


def _paired_folders(dir_a: Path, dir_b: Path, root: Path, name: str, strict: bool) -> PairedData:
    files_a, files_b, other = paired_files(dir_a, dir_b)
    (arr_a, bad_a), (arr_b, bad_b) = read_images(files_a, root, strict), read_images(files_b, root, strict)
    keep = [i for i in range(len(files_a)) if arr_a[i] is not None and arr_b[i] is not None]
    for i in keep:
        if arr_a[i].shape[:2] != arr_b[i].shape[:2]:
            raise GankitError(f"{files_a[i]}: is {_wh(arr_a[i])} but its pair {files_b[i]} is {_wh(arr_b[i])} "
                              "(width x height); the two images of a pair must have one size")
    xa, resized = stack_images([arr_a[i] for i in keep])
    xb, _ = stack_images([arr_b[i] for i in keep], tuple(xa.shape[-2:]))  # same sizes, so the same resizes
    notes = [f"skipped {other} non-image files"] if other else []
    if bad_a or bad_b:
        notes.append(f"{unreadable_note(bad_a + bad_b, root)}; their pairs were dropped")
    return PairedData(xa, xb, True, name, notes=notes + ([resized.replace("images", "pairs", 1)] if resized else []))


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    """Relative path without its extension -> file; two files with one such name are an error."""
    out: dict[str, Path] = {}
    for p in paths:
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in out:
            raise GankitError(f"{folder}: {out[key].name} and {p.name} share the name {key!r}; paired files "
                              "are matched by name without the extension, so keep one")
        out[key] = p
    return out


def _side_by_side(folder: Path, root: Path, name: str, strict: bool, recursive: bool) -> PairedData:
    paths, other = list_images(folder, recursive)
    arrays, bad = read_images(paths, root, strict)
    good = [(p, a) for p, a in zip(paths, arrays) if a is not None]
    odd = [(p, a) for p, a in good if a.shape[1] != 2 * a.shape[0]]
    if odd:
        more = f" ({len(odd) - 1} more like it)" if len(odd) > 1 else ""
        raise GankitError(f"{odd[0][0]}: is {_wh(odd[0][1])} (width x height){more}; side-by-side AB images "
                          "need width = 2 x height (A on the left, B on the right)")
    xa, resized = stack_images([a[:, :a.shape[0]] for _, a in good])  # left half: A
    xb, _ = stack_images([a[:, a.shape[0]:] for _, a in good], tuple(xa.shape[-2:]))  # right half: B
    notes = [n for n in (f"skipped {other} non-image files" if other else None, unreadable_note(bad, root),
                         resized) if n]
    return PairedData(xa, xb, True, name, notes=notes)


def _wh(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


# -- shapes ----------------------------------------------------------------------------------

def _conform(data: PairedData, resolution: int | None) -> PairedData:
    """Square both domains to `resolution` (centre crop, antialiased resize); without one, bring
    B to A's size so that a translator maps between equal shapes."""
    for side in ("a", "b"):
        x = getattr(data, side)
        h, w = x.shape[-2:]
        if resolution is not None and (h, w) != (resolution, resolution):
            setattr(data, side, resize_uint8(center_crop_square(x), resolution))
            data.notes.append(f"resized {side.upper()} {h}x{w} -> {resolution}x{resolution}")
    size_a, size_b = tuple(data.a.shape[-2:]), tuple(data.b.shape[-2:])
    if size_a != size_b:
        data.b = resize_uint8(data.b, size_a)
        data.notes.append(f"resized B {size_b[0]}x{size_b[1]} -> {size_a[0]}x{size_a[1]} to match A")
    return data
