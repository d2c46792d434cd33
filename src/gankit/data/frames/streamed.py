"""Videos on the streaming path: `StreamedTriplets`, frame triplets read from on-disk frame stores
as training needs them, for a video file or folder too large to hold as triplets in memory.

**What is stored.** Each video is decoded once into a frame store (`gankit.data.frames.store`: a
uint8 .npy of its frames under the cache folder, a third of its triplets' size in memory). The
triplets are the in-memory path's (`gankit.data.frames.videos`: the same files in the same order,
the same held-out split of a single video, the same skips), so streamed triplet i is in-memory
triplet i: an index maps i to (video, first frame) and frames t-1, t, t+1 are one read.

**Order and resume** are the image streaming path's (`gankit.data.stream`): a DataLoader replays
the run's sampler from the checkpointed position, worker processes read each batch's triplets and,
with `interpolate.flow`, compute the guides the task hands in (its Farneback halfway warps,
`gankit.metrics.frames.halfway_warps`, frame pair by frame pair, so the numbers are those the
in-memory path caches; passed in, since data sits below metrics), and the batches arrive in
order, prefetched, pinned on a GPU.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit.data.files import name_list
from gankit.data.frames import NAMED, check_size
from gankit.data.frames.store import FrameStore, frame_store
from gankit.data.frames.triplets import Triplets
from gankit.data.frames.videos import HOLD_OUT, _resize_note, folder_videos, gather, one_video_span, video_path
from gankit.data.sampler import BatchSampler
from gankit.data.stream import ReplayedStream, choose, gb, replay_loader
from gankit.errors import GankitError
from gankit.media.video import count_frames, probe_video


class TripletSource(torch.utils.data.Dataset):
    """Triplet i -> (uint8 (3, C, H, W) frames t-1, t, t+1; i), read from the stores. `spans`:
    per store, (its first triplet, how many), in the order the triplets are numbered."""

    def __init__(self, stores: list[FrameStore], spans: list[tuple[int, int]]):
        self.stores, self.first = stores, np.array([a for a, _ in spans], np.int64)
        self.starts = np.concatenate([[0], np.cumsum([n for _, n in spans])]).astype(np.int64)  # (V + 1,)
        self.shape = stores[0].shape
        self._fds: dict[int, int] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getstate__(self):  # to a worker: descriptors are opened there
        return {**self.__dict__, "_fds": {}}

    def frames(self, i: int) -> torch.Tensor:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1  # the store triplet i is in
        store = self.stores[k]
        if k not in self._fds:
            try:
                self._fds[k] = os.open(store.path, os.O_RDONLY)
            except OSError as e:
                raise GankitError(f"{store.path}: frame store unreadable ({e.strerror}); it is rebuilt from the "
                                  "video when the run restarts") from None
        return store.read(int(self.first[k] + i - self.starts[k]), 3, self._fds[k])  # frames t-1, t, t+1

    def item(self, i: int):
        """(frames, i), or (None, the one-line message) for a worker to hand back as data."""
        try:
            return self.frames(i), i
        except GankitError as e:
            return None, str(e)

    def __getitem__(self, i: int):
        return self.item(i)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


class Collate:
    """A worker's batch: (prev, mid, next) uint8 (b, C, H, W) each, with `guides` also what it
    returns for (prev, next) (the interpolate task's: both neighbours' halfway warps) as float16
    (b, C, H, W) on 0..255 (as `with_warps` stores them); and the indices. A bad item's message
    instead of the batch. `guides` is a module-level function: the workers get it pickled."""

    def __init__(self, guides: Callable | None):
        self.guides = guides

    def __call__(self, items):
        bad = next((msg for x, msg in items if x is None), None)
        if bad is not None:
            return None, bad
        prev, mid, nxt = (torch.stack([x[k] for x, _ in items]) for k in range(3))
        out = (prev, mid, nxt)
        if self.guides is not None:
            out += tuple(w.half() for w in self.guides(prev, nxt))
        return out, torch.tensor([i for _, i in items], dtype=torch.int64)


class StreamedTriplets(ReplayedStream):
    """Frame triplets read from frame stores on demand (see the module docstring); the surface
    the interpolate task uses on a resident `Triplets` (name, notes, sources, len, meta, to)."""

    resident = False

    def __init__(self, source: TripletSource, name: str, notes: list[str], sources: list[str], device,
                 workers: int = 2, prefetch: int = 2, guides: Callable | None = None):
        self.source, self.name, self.notes, self.sources = source, name, notes, sources
        self.device, self.workers, self.prefetch, self.guides = torch.device(device), workers, prefetch, guides
        self._loader = None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.source.shape

    def meta(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "count": len(self)}

    def to(self, device) -> StreamedTriplets:
        self.device = torch.device(device)
        return self

    def take(self, idx) -> Triplets:
        """The triplets at `idx`, read in this process, as an in-memory `Triplets` on the CPU."""
        idx = torch.as_tensor(idx).tolist()
        x = torch.stack([self.source.frames(int(i)) for i in idx])  # (n, 3, C, H, W)
        return Triplets(x[:, 0], x[:, 1], x[:, 2], self.name, sources=self.sources)

    def fetch(self, sampler: BatchSampler, pos: int, idx: torch.Tensor, shard: tuple[int, int]) -> tuple:
        """This rank's slice `idx` of the global batch that starts at stream position `pos`:
        (prev, mid, next) on the device, and with flow the two warps; as `StreamData.fetch`, the
        loader restarts at `pos` when it is elsewhere (the first batch, a resume, a rollback)."""
        return tuple(t.to(self.device, non_blocking=True) for t in self._replayed(sampler, pos, idx, shard))

    def _make_loader(self, sampler: BatchSampler, pos: int, shard: tuple[int, int]):
        self.close()
        return replay_loader(self.source, sampler, pos, shard, self.workers, self.prefetch, self.device,
                             Collate(self.guides))

    def __del__(self):
        try:
            self.close()
            self.source.close()
        except Exception:  # interpreter shutdown: the workers die with the process anyway
            pass


def _hw(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]  # VideoInfo's (W, H) -> (H, W)


def open_frames(source: str, size: int | None, device, load: str, memory_budget: float | None, workers: int,
                prefetch: int, guides: Callable | None = None, strict: bool = False) -> tuple[StreamedTriplets | None, str | None]:
    """(a video file's or folder's training triplets streamed, or None when they load in memory;
    the line saying which and why). In memory: a named source (no line), or data.load=memory, or
    triplets that fit the budget (the decoded triplets, and with `guides` (two per triplet) their float16 warps,
    against `memory_budget`, as for images). Bad input is refused with the in-memory path's
    one-line messages."""
    check_size(size)
    flow = guides is not None
    if source.partition(":")[0] in NAMED:
        if load == "stream":
            raise GankitError(f"data.load=stream: {source!r} cannot stream; streaming reads a video file or a folder "
                              "of videos (data.load memory or auto for moving-mnist and pans)")
        return None, None
    path = Path(source).expanduser()
    single = video_path(path, source)
    # the choice, before any decode: frame counts from the containers
    if single:
        sizes = {path: _hw(probe_video(path).size)}
        n = count_frames(path) - 2
        n_est = n - max(1, math.ceil(n * HOLD_OUT)) - 2  # less the held-out tail and the 2 beside it
    else:
        f = folder_videos(path, "train", size, strict)
        if not f.infos:  # none readable: gather's one line
            next(gather(f, None, strict), None)
        sizes = {p: _hw(info.size) for p, info in f.infos.items()}
        n_est = sum(max(0, _count(p) - 2) for p in f.infos)
    h, w = next(iter(sizes.values()))
    shape = (3, size or h, size or w)
    n_est = max(0, n_est)
    stream, why = choose(load, n_est * int(np.prod(shape)) * (3 + 4 * flow), memory_budget, device)  # u8 x3, f16 x2
    why += ", flow warps included" if flow else ""

    def what(videos: int) -> str:
        return f"{'x'.join(map(str, shape))} from {videos} video{'s' if videos != 1 else ''}"

    if not stream:
        return None, f"in memory: {n_est:,} triplets of {what(len(sizes))} ({why})"
    # streamed: each video decoded once into its store (or found there), then indexed
    built = []

    def store_of(p: Path):
        s, new = frame_store(p, size, sizes[p])
        built.append(new)
        return s, s.frames, s.source_size

    if single:
        store = store_of(path)[0]
        keep, notes = one_video_span(path, source, "train", store.frames)
        stores, spans, used = [store], [(keep.start, keep.stop - keep.start)], [path.name]
        notes += _resize_note(size, {store.source_size})
    else:
        got = list(gather(f, store_of, strict))
        stores, spans, used = [s for _, s, _ in got], [(0, n - 2) for _, _, n in got], f.used
        notes = [f"{sum(c for _, c in spans)} triplets from {sum(s.frames for s in stores)} frames of {len(used)} "
                 f"videos ({name_list(used)})"] + f.notes() + _resize_note(size, f.sizes)
    data = TripletSource(stores, spans)
    head = (f"streaming from {path.name}{'' if single else '/'}: {len(data):,} triplets of {what(len(stores))} "
            f"({why}), {workers or 'no'} worker{'s' if workers != 1 else ''}"
            f"{', warps computed by the workers' if flow else ''}")
    disk_note = (f"frames stored once in {stores[0].path.parent}: {gb(sum(s.nbytes for s in stores))} on disk, "
                 f"{sum(built)} of {len(stores)} videos decoded now, the rest read from earlier runs")
    return StreamedTriplets(data, source, [head, disk_note] + notes, used, device, workers, prefetch, guides), head


def _count(p: Path) -> int:
    try:
        return count_frames(p)
    except GankitError:  # probed but damaged further on: skipped when its frames are stored
        return 0
