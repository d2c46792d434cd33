"""Frame triplets for frame interpolation: predict frame t from frames t-1 and t+1.

`load_triplets(source, split, size)` returns a `Triplets`: uint8 (N, C, H, W) tensors `prev`,
`mid` (the target) and `next`, where triplet i is frames (t-1, t, t+1) of one clip. A triplet
never spans two clips or two videos. Clips are (S, T, C, H, W); `triplets_of` cuts every
consecutive triplet out of them, S * (T - 2) in all, clip by clip.

Named sources (``NAME`` is split train, ``NAME:test`` split test):

- ``moving-mnist`` (`moving_digits`): two MNIST digits bouncing in a 64x64 frame.
- ``pans`` (`photo_pans`): slow camera pans over the bundled photos.

Videos (`videos`): a video file, or a folder of videos. Too large to hold as triplets, they
stream instead (`streamed`: each video decoded once into an on-disk frame store, `store`).

`size` on ``moving-mnist`` resizes its 64x64 frames; on ``pans`` it is the window side; on videos
every frame is centre-cropped to a square and resized. Each source's module says how it is made.
"""

from __future__ import annotations

from pathlib import Path

from gankit.data.frames.moving_digits import (MOVING_MNIST_COUNTS, MOVING_MNIST_FRAMES, MOVING_MNIST_SIDE,
                                              cached_moving_mnist)
from gankit.data.frames.photo_pans import PAN_COUNTS, PAN_FRAMES, PAN_SIDE, pans_and_photos
from gankit.data.frames.triplets import FRAME_SOURCES_HELP, SEEDS, Triplets, triplets_of
from gankit.data.frames.videos import load_videos
from gankit.errors import GankitError
from gankit.media.images import resize_uint8

__all__ = ["FRAME_SOURCES_HELP", "Triplets", "load_triplets", "triplets_of"]

NAMED = ("moving-mnist", "pans")
MIN_SIZE = 8


def check_size(size) -> None:
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < MIN_SIZE):
        raise GankitError(f"size {size!r}: expected a whole number of pixels >= {MIN_SIZE} (the side of the "
                          "square frames), or none to keep the source's own size")


def load_triplets(source: str, split: str = "train", size: int | None = None, strict: bool = False,
                  limit: int | None = None) -> Triplets:
    """Load `source` (see the module docstring) for `split`, frames squared to `size` if given.
    `strict` makes the first unreadable video of a folder an error instead of a skipped file.
    `limit`: only the first `limit` triplets (a video split decodes only the frames they need)."""
    check_size(size)
    base, _, tail = source.partition(":")
    if base not in NAMED:
        return load_videos(Path(source).expanduser(), source, split, size, strict, limit)
    t = _named(source, base, tail, split, size)
    if limit is not None and limit < len(t):  # the named sets are small: made whole, then cut
        t.prev, t.mid, t.next = t.prev[:limit], t.mid[:limit], t.next[:limit]
    return t


def _named(source: str, base: str, tail: str, split: str, size: int | None) -> Triplets:
    if tail not in ("", "train", "test"):
        raise GankitError(f"{source}: unknown split {tail!r}; expected {base} or {base}:test")
    split = tail or split
    if split not in ("train", "test"):
        raise GankitError(f"{source}: unknown split {split!r}; expected 'train' or 'test'")
    name = base if split == "train" else f"{base}:test"
    seed = SEEDS[split]
    if base == "pans":
        side = size or PAN_SIDE
        clips, used = pans_and_photos(split, PAN_COUNTS[split], PAN_FRAMES, side, seed)
        notes = [f"{PAN_COUNTS[split]} pans of {PAN_FRAMES} frames, {side}x{side}, over {len(used)} {split} photos "
                 f"({', '.join(used)}), seed {seed}"]
        return Triplets(*triplets_of(clips), name, notes, sources=used)
    n, frames = MOVING_MNIST_COUNTS[split], MOVING_MNIST_FRAMES
    clips = cached_moving_mnist(split, n, frames, MOVING_MNIST_SIDE, seed)
    notes = [f"{n} Moving MNIST sequences of {frames} frames from MNIST {split} digits, seed {seed}"]
    prev, mid, nxt = triplets_of(clips)
    if size is not None and size != MOVING_MNIST_SIDE:
        prev, mid, nxt = (resize_uint8(x, size) for x in (prev, mid, nxt))
        notes.append(f"resized {MOVING_MNIST_SIDE}x{MOVING_MNIST_SIDE} -> {size}x{size}")
    return Triplets(prev, mid, nxt, name, notes)
