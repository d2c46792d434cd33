"""The streaming data path: images decoded batch by batch from a zip or folder as training needs them.

`StreamData` has the surface the trainer and tasks use on a resident `Dataset` (name, kind,
shape, classes, y, notes, meta, len, to_model, read, mirror) but holds no images: the labels (a
small int64 tensor) live on the device, the pixels stay in the archive (`gankit.data.archive`).

**Order.** The indices still come from the run's `BatchSampler` (a function of seed and epoch; its
position `consumed` is checkpointed). `fetch(pos, idx)` returns the images of the batch that
starts at stream position `pos`: a torch DataLoader replays the same sampler from `pos` in the
main process (`_Replay`), its worker processes decode and conform each image, and batches arrive
in order, `prefetch` per worker ahead, in pinned memory when the device is a GPU, copied without
blocking. When the requested position is not the one the loader is at (first step, resume,
rollback to a checkpoint) the loader restarts there, so a resumed run reads exactly the batches
the uninterrupted run read. Memory: only the prefetched batches exist, whatever the set's size.

**Data-parallel.** Each rank replays the whole global batch's indices and decodes only its own
slice (`shard`): ranks read disjoint images, and the global batch does not depend on the number
of processes.

**Mirror.** With `mirror`, the index space is [0, 2N): index i is image i mod N, flipped left to
right when i >= N (StyleGAN2-ADA's --mirror), on this path and on the resident one alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankit.data.archive import ImageArchive
from gankit.data.dataset import convert_channels, center_crop_square, to_model
from gankit.data.sampler import BatchSampler
from gankit.errors import GankitError
from gankit.media.images import resize_uint8


def conform_image(img: torch.Tensor, native: tuple[int, int, int], shape: tuple[int, int, int],
                  where: str) -> torch.Tensor:
    """uint8 (C0, H, W) as decoded -> uint8 `shape` (C, R, R): channels converted, then centre-cropped
    square and resized, as `Dataset.conform` does to a resident set. Every image of a set must have
    the set's size (`native`, the first image's): a different one is an error naming the file."""
    if tuple(img.shape[1:]) != tuple(native[1:]):
        raise GankitError(f"{where}: image is {img.shape[2]}x{img.shape[1]}, the dataset's others "
                          f"{native[2]}x{native[1]}; give every image one size (gankit dataset --resolution)")
    x = convert_channels(img[None], shape[0])
    if tuple(x.shape[2:]) != tuple(shape[1:]):
        x = resize_uint8(center_crop_square(x), shape[1])
    return x[0]


class ImageSource(torch.utils.data.Dataset):
    """Index i in [0, N) or, mirrored, [0, 2N) -> (uint8 (C, R, R) image, i): what a worker decodes."""

    def __init__(self, archive: ImageArchive, shape: tuple[int, int, int], mirror: bool):
        self.archive, self.shape, self.mirror = archive, tuple(shape), mirror
        self.native = archive.shape

    def __len__(self) -> int:
        return len(self.archive) * (2 if self.mirror else 1)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        n = len(self.archive)
        x = conform_image(self.archive.read(i % n), self.native, self.shape, self.archive.where(i % n))
        return (x.flip(-1) if i >= n else x), i

    def item(self, i: int):
        """`self[i]`, or the one-line message of a file that cannot be used (a worker hands it back
        as data: an exception raised in a worker reaches the trainer wrapped in its traceback)."""
        try:
            return self[i]
        except GankitError as e:
            return None, str(e)


class _Replay:
    """The sampler's index stream from position `start`, as DataLoader batches: this rank's slice
    of each global batch, as a list of ints. Runs in the training process (DataLoader iterates its
    batch sampler there), on a copy of the run's sampler, so the worker processes need no state."""

    def __init__(self, sampler: BatchSampler, start: int, shard: tuple[int, int]):
        self.sampler, self.start, self.shard = sampler, start, shard

    def __iter__(self):
        s = BatchSampler(self.sampler.n, self.sampler.batch, self.sampler.seed, self.sampler.device, host=True)
        s.consumed = self.start
        a, b = self.shard[0], sum(self.shard)
        while True:
            yield s.next()[a:b].tolist()


class _Items(torch.utils.data.Dataset):
    """What the DataLoader indexes: `ImageSource.item` (errors as data)."""

    def __init__(self, source: ImageSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        return self.source.item(i)


def private_generator() -> torch.Generator:
    """For the DataLoader's own seeding draw: without one it draws from torch's global generator,
    which the training step owns (dropout, noise inputs) and checkpoints, so every loader (re)start
    would move the run's random stream and a resumed run would drift from the whole one."""
    return torch.Generator().manual_seed(0)


def _worker_init(_):
    torch.set_num_threads(1)  # decoding is per image; threads per worker would oversubscribe the cores


def replay_loader(dataset, sampler: BatchSampler, pos: int, shard: tuple[int, int], workers: int, prefetch: int,
                  device: torch.device, collate) -> torch.utils.data.DataLoader:
    """The DataLoader that replays the run's `sampler` from stream position `pos` (`_Replay`: this
    rank's `shard` of each global batch): `workers` processes read `dataset`'s items (none: this
    process), `collate` makes each batch, `prefetch` batches per worker ahead, pinned for a GPU."""
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=_Replay(sampler, pos, shard), num_workers=workers,
        prefetch_factor=prefetch if workers else None, persistent_workers=False,
        pin_memory=device.type == "cuda", worker_init_fn=_worker_init if workers else None,
        collate_fn=collate, generator=private_generator())


class ReplayedStream:
    """The loader a streamed data set holds (`StreamData`, `StreamedTriplets`): `_replayed` takes the
    batch that starts at stream position `pos`, restarting the loader there when it is elsewhere
    (the first batch, a resume, a rollback); `close` stops its workers. A subclass writes
    `_make_loader(sampler, pos, shard)`, whose batches are (batch, indices) or (None, a bad item's
    one-line message)."""

    _loader: list | None = None  # [iterator, next position, (batch, shard, seed, n)]

    def _replayed(self, sampler: BatchSampler, pos: int, idx: torch.Tensor, shard: tuple[int, int]):
        """The loader's batch at `pos` for this rank's slice `idx` of the global batch, on the CPU."""
        key = (sampler.batch, tuple(shard), sampler.seed, sampler.n)
        if self._loader is None or self._loader[1] != pos or self._loader[2] != key:
            self._loader = [iter(self._make_loader(sampler, pos, shard)), pos, key]
        x, got = next(self._loader[0])
        if x is None:  # a damaged or odd-sized file, a store gone or cut short: one line naming it
            self.close()
            raise GankitError(got)
        self._loader[1] = pos + sampler.batch
        # The replay must be the run's own stream: checked where it costs nothing (on a GPU the
        # check would wait for the queued step every batch; the position is checked there).
        if idx.device.type == "cpu" and not torch.equal(got, idx):
            raise RuntimeError(f"streaming loader out of step at position {pos}: read {got[:4].tolist()}..., "
                               f"the sampler drew {idx[:4].tolist()}...")
        return x

    def _make_loader(self, sampler: BatchSampler, pos: int, shard: tuple[int, int]):
        raise NotImplementedError

    def close(self) -> None:
        """Stop the worker processes (a new loader starts them again)."""
        if self._loader is not None:
            it = self._loader[0]
            self._loader = None
            if hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the workers die with the process anyway
            pass


class StreamData(ReplayedStream):
    """Images read from a zip or folder on demand (see the module docstring)."""

    resident = False
    kind = "image"
    scale = 1.0

    def __init__(self, archive: ImageArchive, name: str, shape: tuple[int, int, int], device,
                 workers: int = 2, prefetch: int = 2, mirror: bool = False, notes: list[str] | None = None):
        self.archive, self.name, self.device = archive, name, torch.device(device)
        self._shape = tuple(shape)
        self.workers, self.prefetch, self.mirror = workers, prefetch, mirror
        self.classes = archive.classes
        self.y = None if archive.labels is None else torch.from_numpy(archive.labels).to(self.device)
        self.notes = list(notes or [])
        self.source = ImageSource(archive, self._shape, mirror)
        self._loader = None

    def __len__(self) -> int:
        return len(self.archive)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def indices(self) -> int:
        """Size of the index space the sampler draws from: N, or 2N mirrored."""
        return len(self) * (2 if self.mirror else 1)

    def sampler(self, batch: int, seed: int, device) -> BatchSampler:
        """The run's batch sampler over this set's indices (checkpointed)."""
        return BatchSampler(self.indices, batch, seed, device)

    def meta(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape), "scale": self.scale,
                "classes": self.classes}

    def conform(self, resolution: int | None, channels: int | None) -> StreamData:
        """Set the shape each image is converted to as it is read (before the first batch)."""
        c, h, w = self._shape
        shape = (channels or c, resolution or h, resolution or w)
        if shape != self._shape:
            self.notes.append(f"each image converted to {'x'.join(map(str, shape))} as it is read")
            self._shape, self.source = shape, ImageSource(self.archive, shape, self.mirror)
            self.close()
        return self

    def to(self, device) -> StreamData:
        self.device = torch.device(device)
        self.y = None if self.y is None else self.y.to(self.device)
        return self

    def to_model(self, xb: torch.Tensor) -> torch.Tensor:
        return to_model(xb, self.kind, self.scale)

    def labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.y[idx % len(self)]

    def read(self, idx) -> torch.Tensor:
        """uint8 (B, C, H, W) on the CPU for any indices (previews, grids, evaluation references),
        decoded in this process."""
        idx = torch.as_tensor(idx).tolist()
        return torch.stack([self.source[int(i)][0] for i in idx]) if idx else torch.empty((0, *self.shape), dtype=torch.uint8)

    def fetch(self, sampler: BatchSampler, pos: int, idx: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
        """The images of this rank's slice `idx` of the global batch that starts at stream position
        `pos` of `sampler`: uint8 (b, C, H, W) on the device. Restarts the loader at `pos` when it
        is elsewhere (the first batch, a resume, a rollback)."""
        return self._replayed(sampler, pos, idx, shard).to(self.device, non_blocking=True)

    def _make_loader(self, sampler: BatchSampler, pos: int, shard: tuple[int, int]):
        self.close()
        return replay_loader(_Items(self.source), sampler, pos, shard, self.workers, self.prefetch, self.device,
                             _collate)

    def batches(self, batch: int, seed: int = 0, start: int = 0):
        """The loader alone (benchmarks: images/s): uint8 (batch, C, H, W) batches on the device,
        in the order a run with this seed reads them, from stream position `start`, forever."""
        sampler = BatchSampler(self.indices, batch, seed, "cpu")
        loader = self._make_loader(sampler, start, (0, batch))
        for x, got in loader:
            if x is None:
                raise GankitError(got)
            yield x.to(self.device, non_blocking=True)


def _collate(items):
    bad = next((msg for x, msg in items if x is None), None)
    if bad is not None:
        return None, bad
    return torch.stack([x for x, _ in items]), torch.tensor([i for _, i in items], dtype=torch.int64)


def can_stream(source: str) -> bool:
    """Sources the streaming path reads: a .zip, a folder of images (not of scans), WebDataset shards."""
    from gankit.data.shards import is_shards

    if is_shards(source):
        return True
    from gankit.media.medical import holds_medical

    p = Path(source).expanduser()
    # a folder of scans is read whole: its slices are windowed per series, which needs the series
    return (p.is_dir() and not holds_medical(p)) or (p.is_file() and p.suffix.lower() == ".zip")


def memory_of(device) -> int:
    """Bytes of memory on the training device: the GPU's, or the machine's RAM for the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def choose(load: str, size: int, budget_gb: float | None, device) -> tuple[bool, str]:
    """(stream or not, why) for a source that can stream: its decoded `size` in bytes vs the
    budget, unless `load` says memory or stream."""
    budget = budget_gb * 1e9 if budget_gb is not None else memory_of(device) / 4
    whose = "data.memory_budget" if budget_gb is not None else f"a quarter of {torch.device(device).type} memory"
    if load == "stream":
        return True, f"{gb(size)} decoded; data.load=stream"
    if load == "memory":
        return False, f"{gb(size)} decoded; data.load=memory"
    return (size > budget), f"{gb(size)} decoded {'>' if size > budget else '<='} budget {gb(budget)}, {whose}"


def open_source(source: str, resolution: int | None, channels: int | None, device, strict: bool, load: str,
                memory_budget: float | None, workers: int, prefetch: int, mirror: bool, resident):
    """A zip, folder or shards for training: streamed or, when it fits (or `load` says memory),
    decoded whole by `resident()`; the first note says which and why."""
    from gankit.data.shards import is_shards, open_shards

    if is_shards(source):
        return open_shards(source, resolution, channels, device, load, memory_budget, workers, prefetch, mirror)
    archive = ImageArchive(source)
    c, h, w = archive.shape
    shape = (channels or c, resolution or h, resolution or w)
    stream, why = choose(load, len(archive) * int(np.prod(shape)), memory_budget, device)
    what = f"{len(archive):,} images of {'x'.join(map(str, shape))}"
    if not stream:
        data = resident().conform(resolution, channels).to(device)
        data.mirror = mirror
        data.notes.insert(0, f"in memory: {what} ({why})")
        return data
    notes = [f"streaming from {Path(source).name}: {what} ({why}), "
             f"{workers or 'no'} worker{'s' if workers != 1 else ''}" + (", mirrored" if mirror else "")]
    if archive.skipped:
        notes.append(f"passed over {archive.skipped} non-image files")
    if shape != archive.shape:
        notes.append(f"each image converted {'x'.join(map(str, archive.shape))} -> {'x'.join(map(str, shape))} as it is read")
    return StreamData(archive, source, shape, device, workers, prefetch, mirror, notes)
