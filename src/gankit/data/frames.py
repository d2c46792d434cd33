"""Frame triplets for frame interpolation: predict frame t from frames t-1 and t+1.

`load_triplets(source, split, size)` returns a `Triplets`: uint8 (N, C, H, W) tensors `prev`,
`mid` (the target) and `next`, where triplet i is frames (t-1, t, t+1) of one clip. A triplet
never spans two clips or two videos. Clips are (S, T, C, H, W); `triplets_of` cuts every
consecutive triplet out of them, S * (T - 2) in all, clip by clip.

Named sources (``NAME`` is split train, ``NAME:test`` split test):

- ``moving-mnist``: Moving MNIST by the recipe of Srivastava et al. 2015 (`moving_mnist`): two
  28x28 MNIST digits, each at a uniform random start inside a 64x64 frame, moving at a constant
  velocity (speed uniform in 2-5 px/frame, direction uniform over 360 degrees), bouncing off the
  edges (the velocity component normal to the edge is reflected, and so is the overshoot), drawn
  at the position rounded to whole pixels and composited by pixel-wise max; 20 frames per
  sequence, 1 channel. Train: 2,000 sequences (36,000 triplets, ~440 MB as uint8) of MNIST train
  digits, seed 0; test: 200 sequences (3,600 triplets) of MNIST test digits, seed 1, so the test
  set is fixed and no digit image is in both. Generated once, then cached under
  `gankit.util.cache_dir()` as .npz (164 MB for train) keyed by `MOVING_MNIST_VERSION` and the
  arguments: generating the train set takes ~2 s, loading it ~0.2 s.
- ``pans``: slow camera pans over the photos of `gankit.data.photos.PHOTO_SPLIT` (`pans`): each
  sequence is a side x side window (64, or `size`) moving by a constant whole-pixel step over
  one photo (uniformly chosen): (dy, dx) uniform over the 48 integer steps with |dy|, |dx| <= 3,
  not both 0 (1-3 px along each moving axis), starting uniformly where the whole path stays
  inside the photo. The true in-between frame is exact: the window at the middle position.
  3 channels (grey photos repeated). Train: 1,000 sequences of 9 frames (7,000 triplets) over
  the train photos, seed 0; test: 100 sequences (700 triplets) over the held-out photos only,
  seed 1. `Triplets.sources` names the photos used.

Videos (`gankit.media`: .mp4, .mov, .mkv, .avi, .webm; frames are RGB):

- a video file: every consecutive triplet of its frames. Its last 10% of triplets (at least
  one) are split ``test``; split ``train`` is the triplets before them less the 2 that share a
  frame with a held-out triplet, so no frame is in both splits (at least 6 frames are needed).
- a folder: split train = the videos under it (recursively, hidden files aside) except those in
  its ``test/`` and ``val/`` subfolders, or only ``train/`` when it exists; any other split
  (``test``, ``val``, ...) = the videos in that subfolder.

With `size`, every frame is centre-cropped to a square and resized (antialiased) to size x size;
without it, frames keep the video's size, and all videos of a folder must share one: the first
that differs is refused, naming it and the size, rather than silently resized. A video with
fewer than 3 frames is refused, naming it. An unreadable or damaged video in a folder is skipped
with a note, unless `strict` or no video of the folder is readable (then it is an error naming
it). `size` on ``moving-mnist`` resizes its 64x64 frames; on ``pans`` it is the window side.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gankit.data.dataset import center_crop_square, resize_uint8
from gankit.data.files import name_list
from gankit.errors import GankitError
from gankit.media import VIDEO_SUFFIXES, probe_video, read_frames

FRAME_SOURCES_HELP = ("moving-mnist, moving-mnist:test, pans, pans:test, a video file (.mp4, .mov, .mkv, .avi, "
                      ".webm; its last 10% of triplets held out), or a folder of videos (a test/ subfolder holds "
                      "its held-out videos)")
NAMED = ("moving-mnist", "pans")
SEEDS = {"train": 0, "test": 1}  # one fixed seed per split, so each split is one fixed set
MOVING_MNIST_COUNTS = {"train": 2000, "test": 200}  # sequences; x 18 triplets each at 20 frames
MOVING_MNIST_FRAMES = 20
MOVING_MNIST_SIDE = 64
MOVING_MNIST_SPEED = (2.0, 5.0)  # px/frame, uniform
MOVING_MNIST_VERSION = "v1"  # bump when the recipe changes: it keys the cache file
DIGIT = 28  # MNIST digit side
PAN_COUNTS = {"train": 1000, "test": 100}  # sequences; x 7 triplets each at 9 frames
PAN_FRAMES = 9
PAN_SIDE = 64
PAN_MAX_STEP = 3  # px/frame along each axis
HOLD_OUT = 0.1  # of one video's triplets, held out as split test
HELD_OUT_DIRS = ("test", "val")  # subfolders that a folder's training split never reads
MIN_SIZE = 8


@dataclass
class Triplets:
    prev: torch.Tensor  # uint8 (N, C, H, W): frame t-1
    mid: torch.Tensor  # uint8 (N, C, H, W): frame t (the target)
    next: torch.Tensor  # uint8 (N, C, H, W): frame t+1
    name: str  # the source as the user named it
    notes: list[str] = field(default_factory=list)  # what loading generated, skipped, held out or resized
    sources: list[str] = field(default_factory=list)  # the photos or video files the frames come from
    # optional guides, float16 (N, C, H, W) on 0..255: prev and next each warped halfway to the
    # middle (set by the interpolate task when `interpolate.flow`; None otherwise)
    warp_prev: torch.Tensor | None = None
    warp_next: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.mid) == 0:
            raise GankitError(f"{self.name}: no frame triplets")
        if not self.prev.shape == self.mid.shape == self.next.shape or self.mid.ndim != 4:
            raise ValueError(f"Triplets: prev {tuple(self.prev.shape)}, mid {tuple(self.mid.shape)} and next "
                             f"{tuple(self.next.shape)} must be one (N, C, H, W) shape")

    def __len__(self) -> int:
        return len(self.mid)

    def to(self, device: torch.device | str) -> Triplets:
        self.prev, self.mid, self.next = self.prev.to(device), self.mid.to(device), self.next.to(device)
        if self.warp_prev is not None:
            self.warp_prev, self.warp_next = self.warp_prev.to(device), self.warp_next.to(device)
        return self

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "shape": list(self.mid.shape[1:]), "count": len(self)}


def load_triplets(source: str, split: str = "train", size: int | None = None, strict: bool = False) -> Triplets:
    """Load `source` (see the module docstring) for `split`, frames squared to `size` if given.
    `strict` makes the first unreadable video of a folder an error instead of a skipped file."""
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < MIN_SIZE):
        raise GankitError(f"size {size!r}: expected a whole number of pixels >= {MIN_SIZE} (the side of the "
                          "square frames), or none to keep the source's own size")
    base, _, tail = source.partition(":")
    if base not in NAMED:
        return _videos(Path(source).expanduser(), source, split, size, strict)
    if tail not in ("", "train", "test"):
        raise GankitError(f"{source}: unknown split {tail!r}; expected {base} or {base}:test")
    split = tail or split
    if split not in ("train", "test"):
        raise GankitError(f"{source}: unknown split {split!r}; expected 'train' or 'test'")
    name = base if split == "train" else f"{base}:test"
    seed = SEEDS[split]
    if base == "pans":
        side = size or PAN_SIDE
        clips, used = _pans(split, PAN_COUNTS[split], PAN_FRAMES, side, seed)
        notes = [f"{PAN_COUNTS[split]} pans of {PAN_FRAMES} frames, {side}x{side}, over {len(used)} {split} photos "
                 f"({', '.join(used)}), seed {seed}"]
        return Triplets(*triplets_of(clips), name, notes, sources=used)
    n, frames = MOVING_MNIST_COUNTS[split], MOVING_MNIST_FRAMES
    clips = _cached_moving_mnist(split, n, frames, MOVING_MNIST_SIDE, seed)
    notes = [f"{n} Moving MNIST sequences of {frames} frames from MNIST {split} digits, seed {seed}"]
    prev, mid, nxt = triplets_of(clips)
    if size is not None and size != MOVING_MNIST_SIDE:
        prev, mid, nxt = (resize_uint8(x, size) for x in (prev, mid, nxt))
        notes.append(f"resized {MOVING_MNIST_SIDE}x{MOVING_MNIST_SIDE} -> {size}x{size}")
    return Triplets(prev, mid, nxt, name, notes)


def triplets_of(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, T, C, H, W) clips -> (prev, mid, next), each (S * (T - 2), C, H, W): every (t-1, t, t+1)
    of each clip, clip by clip (triplet s * (T - 2) + t - 1 is centred on frame t of clip s)."""
    if clips.ndim != 5 or clips.shape[1] < 3:
        raise ValueError(f"triplets_of: clips {tuple(clips.shape)}; expected (S, T >= 3, C, H, W)")
    c, h, w = clips.shape[2:]
    return tuple(clips[:, i:clips.shape[1] - 2 + i].reshape(-1, c, h, w) for i in range(3))


# -- Moving MNIST ----------------------------------------------------------------------------

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


def _cached_moving_mnist(split: str, n_seq: int, frames: int, side: int, seed: int) -> torch.Tensor:
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


# -- pans --------------------------------------------------------------------------------------

def pans(split: str, n_seq: int, frames: int = PAN_FRAMES, side: int = PAN_SIDE,
         seed: int | None = None) -> torch.Tensor:
    """uint8 (n_seq, frames, 3, side, side): windows panning over the photos of `split` (see the
    module docstring); `seed` None is the split's fixed seed."""
    return _pans(split, n_seq, frames, side, SEEDS.get(split, 0) if seed is None else seed)[0]


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


def _pans(split: str, n_seq: int, frames: int, side: int, seed: int) -> tuple[torch.Tensor, list[str]]:
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


# -- videos --------------------------------------------------------------------------------------

def _videos(path: Path, name: str, split: str, size: int | None, strict: bool) -> Triplets:
    if not path.exists():
        if "/" in name or "\\" in name or "." in name:
            raise GankitError(f"{name}: no such file or folder; frame-interpolation data is {FRAME_SOURCES_HELP}")
        raise GankitError(f"unknown frame-interpolation data source {name!r}; expected {FRAME_SOURCES_HELP}")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise GankitError(f"{name}: not a video (suffix {path.suffix or '(none)'!r}); frame-interpolation data "
                              f"is {FRAME_SOURCES_HELP}")
        return _one_video(path, name, split, size)
    root, folder = path, _split_folder(path, split)
    excluded = HELD_OUT_DIRS if folder == root else ()
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and p.relative_to(folder).parts[0] not in excluded)
    if not found:
        empty = " (the folder is empty)" if not any(folder.iterdir()) else ""
        outside = f" outside {'/, '.join(excluded)}/" if excluded else ""
        raise GankitError(f"{folder}: no videos found{outside}{empty}; looked for {', '.join(VIDEO_SUFFIXES)} "
                          "recursively")
    # Probe first (one frame each): an unreadable file or a size mismatch is found before any long decode.
    infos, bad, first_error = {}, [], None
    for p in found:
        try:
            infos[p] = probe_video(p)
        except GankitError as e:
            if strict:
                raise
            bad.append(p)
            first_error = first_error or e
    if size is None and infos:
        (p0, i0), *rest = infos.items()
        for p, info in rest:
            if info.size != i0.size:
                raise GankitError(f"{p}: is {info.size[0]}x{info.size[1]} but {p0} is {i0.size[0]}x{i0.size[1]} "
                                  "(width x height); the videos of a folder must share a size, or pass a size to "
                                  "crop and resize them all")
    clips, used, sizes = [], [], set()
    for p in infos:
        try:
            clip, source_size = _read_video(p, size)  # (T, C, H, W)
        except GankitError as e:  # damaged after its first frame
            if strict:
                raise
            bad.append(p)
            first_error = first_error or e
            continue
        _enough_frames(p, clip)
        clips.append(clip)
        used.append(p.relative_to(root).as_posix())
        sizes.add(source_size)
    if not clips:
        raise GankitError(f"{folder}: none of its {len(found)} videos is readable; the first: {first_error}")
    prev, mid, nxt = (torch.cat(x) for x in zip(*(triplets_of(c[None]) for c in clips)))
    notes = [f"{len(mid)} triplets from {sum(len(c) for c in clips)} frames of {len(used)} videos ({name_list(used)})"]
    if bad:
        names = name_list([p.relative_to(root).as_posix() for p in bad])
        notes.append(f"skipped {len(bad)} unreadable videos ({names}); the first: {first_error}")
    return Triplets(prev, mid, nxt, name, notes + _resize_note(size, sizes), sources=used)


def _split_folder(root: Path, split: str) -> Path:
    if split != "train":
        if not (root / split).is_dir():
            raise GankitError(f"{root}: no {split}/ subfolder; the held-out videos of split {split!r} go in "
                              f"{root / split}")
        return root / split
    return root / "train" if (root / "train").is_dir() else root


def _one_video(path: Path, name: str, split: str, size: int | None) -> Triplets:
    """One file: the last HOLD_OUT of its triplets are split test, the rest (less the 2 that share
    frames with them) split train."""
    if split not in ("train", "test"):
        raise GankitError(f"{name}: unknown split {split!r}; one video has 'train' and 'test' (its last "
                          f"{HOLD_OUT:.0%} of triplets); other splits need a folder with a {split}/ subfolder")
    clip, source_size = _read_video(path, size)  # (T, C, H, W)
    _enough_frames(path, clip)
    n = len(clip) - 2
    n_test = max(1, math.ceil(n * HOLD_OUT))
    n_train = n - n_test - 2
    if n_train < 1:
        raise GankitError(f"{path}: has {len(clip)} frames; one video is split into training triplets and its last "
                          f"{HOLD_OUT:.0%} held out with no frame in both, which needs at least 6 frames; use a "
                          "longer video, or a folder of videos with the held-out ones in test/")
    keep = slice(0, n_train) if split == "train" else slice(n - n_test, n)
    prev, mid, nxt = (x[keep] for x in triplets_of(clip[None]))
    notes = [f"{split}: triplets {keep.start}-{keep.stop - 1} of {n} from {len(clip)} frames; the last {n_test} are "
             f"held out as split test, and the 2 before them, which share frames with those, are in neither split"]
    return Triplets(prev, mid, nxt, name, notes + _resize_note(size, {source_size}), sources=[path.name])


def _read_video(path: Path, size: int | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """(uint8 (T, 3, H, W) frames of a video, each centre-cropped and resized to size x size if
    given, frame by frame as decoded so that a long video is never held at full size; the
    video's own (H, W))."""
    frames, first = [], None
    for i, a in enumerate(read_frames(path)):  # (H, W, 3) each
        t = torch.from_numpy(a).permute(2, 0, 1)  # (3, H, W)
        if first is None:
            first = tuple(t.shape[1:])
        if size is not None:
            t = center_crop_square(t)
            t = resize_uint8(t[None], size)[0] if t.shape[-1] != size else t.contiguous()
        elif tuple(t.shape[1:]) != first:
            raise GankitError(f"{path}: frame {i} is {t.shape[2]}x{t.shape[1]} but the frames before it are "
                              f"{first[1]}x{first[0]} (width x height); pass a size to crop and resize them all")
        frames.append(t)
    return torch.stack(frames), first  # read_frames refuses a video with no frame


def _enough_frames(path: Path, clip: torch.Tensor) -> None:
    if len(clip) < 3:
        raise GankitError(f"{path}: has {len(clip)} frame{'s' if len(clip) != 1 else ''}, fewer than 3; a frame "
                          "triplet needs 3 consecutive frames")


def _resize_note(size: int | None, sizes: set[tuple[int, int]]) -> list[str]:
    """The note on what `size` changed, given the videos' own (H, W) sizes."""
    changed = sorted(sizes - {(size, size)}) if size is not None else []
    if not changed:
        return []
    shown = ", ".join(f"{w}x{h}" for h, w in changed)
    return [f"centre-cropped and resized frames of {shown} (width x height) to {size}x{size}"]
