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
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gankit.data.dataset import center_crop_square
from gankit.data.files import name_list
from gankit.data.frames.triplets import FRAME_SOURCES_HELP, Triplets, triplets_of
from gankit.errors import GankitError
from gankit.media.images import resize_uint8
from gankit.media.video import VIDEO_SUFFIXES, probe_video, read_frames

HOLD_OUT = 0.1  # of one video's triplets, held out as split test
HELD_OUT_DIRS = ("test", "val")  # subfolders that a folder's training split never reads


def load_videos(path: Path, name: str, split: str, size: int | None, strict: bool) -> Triplets:
    """The triplets of `split` from one video file or a folder of videos (see the module docstring)."""
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
