"""Frame stores: each video of the streaming path decoded once into a uint8 .npy on disk.

A store holds every frame of one video as the training run sees it (centre-cropped and resized to
`size` when one is given), uint8 (T, 3, H, W) in a plain .npy file (`numpy.load` reads it), so a
worker reads frames t-1, t, t+1 of triplet t as one contiguous read at a known offset: no decoding
per step, and no more memory than the frames read. A store costs T x 3 x H x W bytes of disk: a
third of what the video's triplets take decoded in memory (there, each frame is held in up to 3
triplets).

Stores live under `gankit.util.cache_dir()/frames/`, named by the video's stem and a hash of its
resolved path, byte size, modification time, `size` and `STORE_VERSION`: a video edited in place,
or another `size`, makes a new store (old ones stay until the folder is cleared). A store is
written whole or not at all (`gankit.disk.atomic`): the video is decoded frame by frame into a
temporary file whose header is written last, when the frame count is known.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit import disk
from gankit.errors import GankitError

STORE_VERSION = "v1"  # bump when the frames a store holds change (the conversion): it keys the files
HEADER = 128  # bytes before the frames: .npy magic, version, header length, the header padded


def store_path(video: Path, size: int | None) -> Path:
    from gankit.util import cache_dir

    st = video.stat()
    key = repr((STORE_VERSION, str(video.resolve()), st.st_size, st.st_mtime_ns, size))
    return cache_dir() / "frames" / f"{video.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"


@dataclass(frozen=True)
class FrameStore:
    """One video's stored frames: `frames` x `shape` uint8 from byte `offset` of `path`."""

    path: Path
    frames: int
    shape: tuple[int, int, int]  # (3, H, W) as stored
    source_size: tuple[int, int]  # the video's own (H, W)
    offset: int = HEADER

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.offset + self.frames * self.frame_bytes

    def read(self, t: int, k: int, fd: int | None = None) -> torch.Tensor:
        """uint8 (k, 3, H, W): frames t .. t + k - 1, in one read (through `fd` when given, an
        open descriptor of `path`, as a worker keeps one)."""
        n = k * self.frame_bytes
        buf = bytearray(n)
        own = fd is None
        fd = os.open(self.path, os.O_RDONLY) if own else fd
        try:
            got = os.preadv(fd, [buf], self.offset + t * self.frame_bytes)
        finally:
            if own:
                os.close(fd)
        if got != n:
            raise GankitError(f"{self.path}: frame store cut short (frames {t}-{t + k - 1} of {self.frames} asked "
                              f"for); delete it and it is rebuilt from the video")
        return torch.frombuffer(buf, dtype=torch.uint8).view(k, *self.shape)


def _header(shape: tuple[int, ...]) -> bytes:
    """A .npy version 1.0 header for uint8 `shape`, padded with spaces to HEADER bytes (as numpy
    pads its own; its reader takes any padding)."""
    d = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    body = d.ljust(HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def _open(path: Path, source_size: tuple[int, int]) -> FrameStore | None:
    """The store at `path`, or None when there is none or it is not whole."""
    try:
        with open(path, "rb") as f:
            np.lib.format.read_magic(f)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            offset = f.tell()
    except (OSError, ValueError):
        return None
    if fortran or dtype != np.uint8 or len(shape) != 4 or offset != HEADER:
        return None
    store = FrameStore(path, shape[0], tuple(shape[1:]), source_size, offset)
    return store if path.stat().st_size == store.nbytes else None


def existing_store(video: Path, size: int | None) -> FrameStore | None:
    """The store of `video` at `size` if one was made (source size read back from the video only
    when it is found)."""
    path = store_path(video, size)
    if not path.exists():
        return None
    from gankit.media.video import probe_video

    w, h = probe_video(video).size
    return _open(path, (h, w))


def frame_store(video: Path, size: int | None, source_size: tuple[int, int]) -> tuple[FrameStore, bool]:
    """(the store of `video` at `size`, whether it was decoded now): read from the cache, or
    decoded once into it. `source_size` is the video's own (H, W) (from its probe). A video that
    fails to decode part-way is a GankitError naming it, and leaves no store."""
    from gankit.data.frames.videos import conformed_frames

    path = store_path(video, size)
    store = _open(path, source_size)
    if store is not None:
        return store, False
    n, shape = 0, None
    with disk.atomic(path) as tmp, open(tmp, "wb") as f:
        f.write(b"\0" * HEADER)  # the header goes here once the frame count is known
        for t, _ in conformed_frames(video, size):  # (3, H, W) each, one at a time
            shape = tuple(t.shape)
            f.write(t.numpy().tobytes())
            n += 1
        f.seek(0)
        f.write(_header((n, *shape)))
    return FrameStore(path, n, shape, source_size), True
