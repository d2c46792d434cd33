"""Videos as a frame-interpolation source: one video file, or a folder of them.

Videos (`gankit.media.video`: .mp4, .mov, .mkv, .avi, .webm; frames are RGB):

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
it).

These rules (which files, in which order, which triplets of each) are shared with the streaming
path (`gankit.data.frames.streamed`), which reads the same triplets from on-disk frame stores:
`folder_videos`, `gather` and `one_video_span` are its half of this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.data.dataset import center_crop_square
from gankit.data.files import name_list
from gankit.data.frames.triplets import FRAME_SOURCES_HELP, Triplets, triplets_of
from gankit.errors import GankitError
from gankit.media.images import resize_uint8
from gankit.media.video import VIDEO_SUFFIXES, VideoInfo, probe_video, read_frames

HOLD_OUT = 0.1  # of one video's triplets, held out as split test
HELD_OUT_DIRS = ("test", "val")  # subfolders that a folder's training split never reads


def video_path(path: Path, name: str) -> bool:
    """True for a video file, False for a folder; anything else is refused in one line."""
    if not path.exists():
        if "/" in name or "\\" in name or "." in name:
            raise GankitError(f"{name}: no such file or folder; frame-interpolation data is {FRAME_SOURCES_HELP}")
        raise GankitError(f"unknown frame-interpolation data source {name!r}; expected {FRAME_SOURCES_HELP}")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise GankitError(f"{name}: not a video (suffix {path.suffix or '(none)'!r}); frame-interpolation data "
                              f"is {FRAME_SOURCES_HELP}")
        return True
    return False


def load_videos(path: Path, name: str, split: str, size: int | None, strict: bool,
                limit: int | None = None) -> Triplets:
    """The triplets of `split` from one video file or a folder of videos (see the module
    docstring); with `limit`, only the first `limit` of them, and only the frames they need are
    decoded (held-out triplets for grids and evaluation, from a split that may be large)."""
    if video_path(path, name):
        return _one_video(path, name, split, size, limit)
    f = folder_videos(path, split, size, strict)
    want = math.inf if limit is None else limit

    def read(p: Path):
        clip, source_size = _read_video(p, size, None if limit is None else want - got + 2)
        return clip, len(clip), source_size

    clips, got = [], 0
    for p, clip, _ in gather(f, read, strict, stop=lambda: got >= want):
        clips.append(clip)
        got += len(clip) - 2
    prev, mid, nxt = (torch.cat(x)[:limit] for x in zip(*(triplets_of(c[None]) for c in clips)))
    frames = sum(len(c) for c in clips)
    notes = [f"{len(mid)} triplets from {frames} frames of {len(f.used)} videos ({name_list(f.used)})"]
    if limit is not None:
        notes[0] += f": the first {limit} of the split asked for, later frames not read"
    return Triplets(prev, mid, nxt, name, notes + f.notes() + _resize_note(size, f.sizes), sources=f.used)


@dataclass
class FolderVideos:
    """A folder split's videos, probed: `infos` in reading order; what `gather` skipped."""

    root: Path
    folder: Path
    infos: dict[Path, VideoInfo]
    found: int
    bad: list[Path]
    first_error: GankitError | None = None
    used: list[str] | None = None  # by `gather`: the videos read, relative to root
    sizes: set | None = None  # by `gather`: their own (H, W) sizes

    def notes(self) -> list[str]:
        if not self.bad:
            return []
        names = name_list([p.relative_to(self.root).as_posix() for p in self.bad])
        return [f"skipped {len(self.bad)} unreadable videos ({names}); the first: {self.first_error}"]


def folder_videos(path: Path, split: str, size: int | None, strict: bool) -> FolderVideos:
    """The videos of a folder's `split`, sorted, each probed (one frame): an unreadable file is
    skipped (or, `strict`, refused) and, without a `size`, a size mismatch refused before any
    long decode."""
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
    f = FolderVideos(root, folder, {}, len(found), [])
    for p in found:
        try:
            f.infos[p] = probe_video(p)
        except GankitError as e:
            if strict:
                raise
            f.bad.append(p)
            f.first_error = f.first_error or e
    if size is None and f.infos:
        (p0, i0), *rest = f.infos.items()
        for p, info in rest:
            if info.size != i0.size:
                raise GankitError(f"{p}: is {info.size[0]}x{info.size[1]} but {p0} is {i0.size[0]}x{i0.size[1]} "
                                  "(width x height); the videos of a folder must share a size, or pass a size to "
                                  "crop and resize them all")
    return f


def gather(f: FolderVideos, read: Callable, strict: bool, stop: Callable[[], bool] = lambda: False) -> Iterator:
    """(path, what `read(path)` made, frame count) for each readable video of `f` in order, until
    `stop()`: `read` -> (its frames, however held; their count; the video's own (H, W)). A video
    damaged after its first frame is skipped (or, `strict`, refused); one with under 3 frames is
    refused. Sets `f.used` and `f.sizes`."""
    f.used, f.sizes = [], set()
    for p in f.infos:
        if stop():
            return
        try:
            made, n, source_size = read(p)
        except GankitError as e:  # damaged after its first frame
            if strict:
                raise
            f.bad.append(p)
            f.first_error = f.first_error or e
            continue
        enough_frames(p, n)
        f.used.append(p.relative_to(f.root).as_posix())
        f.sizes.add(source_size)
        yield p, made, n
    if not f.used:
        raise GankitError(f"{f.folder}: none of its {f.found} videos is readable; the first: {f.first_error}")


def _split_folder(root: Path, split: str) -> Path:
    if split != "train":
        if not (root / split).is_dir():
            raise GankitError(f"{root}: no {split}/ subfolder; the held-out videos of split {split!r} go in "
                              f"{root / split}")
        return root / split
    return root / "train" if (root / "train").is_dir() else root


def one_video_span(path: Path, name: str, split: str, frames: int) -> tuple[slice, list[str]]:
    """One file of `frames` frames: the triplets of `split` (the last HOLD_OUT are split test,
    the rest less the 2 that share frames with them split train), and the note saying so."""
    if split not in ("train", "test"):
        raise GankitError(f"{name}: unknown split {split!r}; one video has 'train' and 'test' (its last "
                          f"{HOLD_OUT:.0%} of triplets); other splits need a folder with a {split}/ subfolder")
    enough_frames(path, frames)
    n = frames - 2
    n_test = max(1, math.ceil(n * HOLD_OUT))
    n_train = n - n_test - 2
    if n_train < 1:
        raise GankitError(f"{path}: has {frames} frames; one video is split into training triplets and its last "
                          f"{HOLD_OUT:.0%} held out with no frame in both, which needs at least 6 frames; use a "
                          "longer video, or a folder of videos with the held-out ones in test/")
    keep = slice(0, n_train) if split == "train" else slice(n - n_test, n)
    return keep, [f"{split}: triplets {keep.start}-{keep.stop - 1} of {n} from {frames} frames; the last {n_test} are "
                  f"held out as split test, and the 2 before them, which share frames with those, are in neither split"]


def _one_video(path: Path, name: str, split: str, size: int | None, limit: int | None) -> Triplets:
    if split not in ("train", "test"):
        one_video_span(path, name, split, 0)  # the one-line refusal, before any decode
    if limit is not None:  # a stored copy (the streaming path made one): only the frames asked for are read
        from gankit.data.frames.store import existing_store

        store = existing_store(path, size)
        if store is not None:
            keep, notes = one_video_span(path, name, split, store.frames)
            stop = min(keep.stop, keep.start + limit)
            x = store.read(keep.start, stop - keep.start + 2)  # frames start .. stop + 1
            prev, mid, nxt = (x[i:len(x) - 2 + i] for i in range(3))
            notes.append(f"the first {len(mid)} of them, read from the frame store {store.path}")
            return Triplets(prev, mid, nxt, name, notes + _resize_note(size, {store.source_size}), sources=[path.name])
    clip, source_size = _read_video(path, size)  # (T, C, H, W)
    keep, notes = one_video_span(path, name, split, len(clip))
    if limit is not None:
        keep = slice(keep.start, min(keep.stop, keep.start + limit))
    prev, mid, nxt = (x[keep] for x in triplets_of(clip[None]))
    return Triplets(prev, mid, nxt, name, notes + _resize_note(size, {source_size}), sources=[path.name])


def conformed_frames(path: Path, size: int | None) -> Iterator[tuple[torch.Tensor, tuple[int, int]]]:
    """(uint8 (3, H, W) frame, the video's own (H, W)) for each frame as decoded, centre-cropped
    and resized to size x size if given (so that a long video is never held at full size);
    without a size, a frame whose size differs from the first is refused."""
    first = None
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
        yield t, first


def _read_video(path: Path, size: int | None, most: float | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """(uint8 (T, 3, H, W) frames of a video, the first `most` if given; the video's own (H, W))."""
    frames, first = [], None
    for t, first in conformed_frames(path, size):
        frames.append(t)
        if most is not None and len(frames) >= most:
            break
    return torch.stack(frames), first  # read_frames refuses a video with no frame


def enough_frames(path: Path, n: int) -> None:
    if n < 3:
        raise GankitError(f"{path}: has {n} frame{'s' if n != 1 else ''}, fewer than 3; a frame "
                          "triplet needs 3 consecutive frames")


def _resize_note(size: int | None, sizes: set[tuple[int, int]]) -> list[str]:
    """The note on what `size` changed, given the videos' own (H, W) sizes."""
    changed = sorted(sizes - {(size, size)}) if size is not None else []
    if not changed:
        return []
    shown = ", ".join(f"{w}x{h}" for h, w in changed)
    return [f"centre-cropped and resized frames of {shown} (width x height) to {size}x{size}"]
