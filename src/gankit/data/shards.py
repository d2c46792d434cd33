"""WebDataset tar shards on the streaming path: sets beyond one machine's disk.

A source ``faces-{000000..000099}.tar`` (brace form, expanded by the `webdataset` package), a
single ``.tar``, or ``pipe:CMD`` URLs (``pipe:curl -s https://.../faces-{000000..000099}.tar``,
``pipe:aws s3 cp s3://... -``) that stream a shard to stdout, so shards can live in object
storage and many nodes read them. A sample is the tar members sharing a key: one image
(.png/.jpg/.jpeg/.bmp) and optionally ``.cls`` (its class, an integer as text).

**Order.** Tars are read sequentially, never seeked: an epoch visits the shards in a permutation
drawn from (seed, epoch) and each shard's samples in their stored order (shard-level shuffling
only: keep each shard's contents mixed when writing it). Stream position p (the sampler's
`consumed`, checkpointed like `BatchSampler`'s) maps to (epoch, shard order index, samples into
the shard), so a resumed run reopens that shard, skips that many samples, and reads exactly the
batches the uninterrupted run read.

**Counting.** The position map needs each shard's sample count: counted once when the source is
opened, from the tar headers of local shards (fast) or by streaming each ``pipe:`` shard once
(its whole size: for remote sets, budget that at start-up). Labels are read in the same pass.

**Limits.** `read(idx)` (previews, references) streams shards up to the indices it needs: slow
for large sets, so references should be a zip or a held-out set. Within a shard the order is
fixed. With mirror, each visit of a sample is flipped or not by a hash of (seed, epoch, sample),
equal in distribution to StyleGAN2-ADA's doubled set, not its enumeration. In a data-parallel job
every rank reads every shard's bytes and decodes only its slice of each global batch (the same
global batch whatever the number of processes), and each DataLoader worker reads the stream,
decoding only its own batches: reading is repeated, decoding is not.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import torch

from gankit.data.files import read_image
from gankit.data.stream import StreamData, conform_image, gb
from gankit.errors import GankitError
from gankit.media.images import IMAGE_SUFFIXES

EXTS = tuple(s.lstrip(".") for s in IMAGE_SUFFIXES)


def is_shards(source: str) -> bool:
    return source.startswith("pipe:") or source.rstrip("}").endswith(".tar") or (".tar" in source and "{" in source)


def expand(source: str) -> list[str]:
    from webdataset.shardlists import expand_urls

    urls = expand_urls(source)
    local = [u for u in urls if not u.startswith("pipe:")]
    missing = [u for u in local if not Path(u).is_file()]
    if missing:
        raise GankitError(f"{source}: {len(missing)} of {len(urls)} shards not found (first: {missing[0]})")
    return urls


def _samples(url: str):
    """A shard's samples in stored order: dicts {"__key__", ext: bytes}."""
    from webdataset.tariterators import tarfile_samples

    return tarfile_samples([{"url": url}])


def _image_of(sample: dict) -> tuple[str, bytes] | None:
    for ext in EXTS:
        if ext in sample:
            return ext, sample[ext]
    return None


def _label(raw: bytes, where: str) -> int:
    try:
        v = int(raw.decode().strip())
    except ValueError:
        raise GankitError(f"{where}.cls: {raw[:20]!r} is not an integer class") from None
    if v < 0:
        raise GankitError(f"{where}.cls: class {v}; expected an integer >= 0")
    return v


def _scan(url: str) -> tuple[int, list[int | None]]:
    """(samples with an image, their labels or None each) of one shard."""
    labels = []
    if not url.startswith("pipe:"):  # local: headers only, small .cls members read
        with tarfile.open(url) as t:
            keys: dict[str, dict] = {}
            order = []
            for m in t:
                if not m.isreg() or m.name.rpartition("/")[2].startswith(("__", ".")):
                    continue
                stem, _, ext = m.name.rpartition("/")[2].partition(".")
                key = m.name.rpartition("/")[0] + "/" + stem if "/" in m.name else stem
                if key not in keys:
                    keys[key] = {}
                    order.append(key)
                ext = ext.lower()
                if ext == "cls":
                    keys[key]["cls"] = t.extractfile(m).read()
                elif ext in EXTS:
                    keys[key]["img"] = True
            for k in order:
                if keys[k].get("img"):
                    labels.append(_label(keys[k]["cls"], f"{url}:{k}") if "cls" in keys[k] else None)
        return len(labels), labels
    for s in _samples(url):
        if _image_of(s):
            labels.append(_label(s["cls"], f"{url}:{s['__key__']}") if "cls" in s else None)
    return len(labels), labels


class ShardSampler:
    """`BatchSampler`'s interface over the shard stream: next() -> int64 (B,) sample ids (sample i
    of the set, + N when mirrored and flipped); the whole state is `consumed`."""

    def __init__(self, counts: list[int], batch: int, seed: int, mirror: bool, device="cpu"):
        self.counts = torch.tensor(counts, dtype=torch.int64)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.n, self.batch, self.seed, self.mirror = int(self.counts.sum()), batch, seed, mirror
        if batch > self.n:
            raise GankitError(f"batch size {batch} is larger than the dataset ({self.n} examples); "
                              f"use train.batch <= {self.n}")
        self.device = torch.device(device)
        self.consumed = 0

    @property
    def epoch(self) -> float:
        return self.consumed / self.n

    def order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        return torch.randperm(len(self.counts), generator=g)

    def locate(self, p: int) -> tuple[int, int, int]:
        """Stream position p -> (epoch, shard order index, samples into that shard)."""
        e, o = divmod(p, self.n)
        cum = torch.cumsum(self.counts[self.order(e)], 0)
        j = int(torch.searchsorted(cum, o, right=True))
        return e, j, o - int(cum[j] - self.counts[self.order(e)[j]])

    def ids(self, p: int, k: int) -> torch.Tensor:
        """The ids at stream positions p .. p+k-1 (CPU)."""
        pos = torch.arange(p, p + k)
        e, o = pos // self.n, pos % self.n
        out = torch.empty(k, dtype=torch.int64)
        for ep in e.unique().tolist():
            m = e == ep
            perm = self.order(ep)
            cum = torch.cumsum(self.counts[perm], 0)
            j = torch.searchsorted(cum, o[m], right=True)
            shard = perm[j]
            out[m] = self.starts[shard] + o[m] - (cum[j] - self.counts[shard])
        if self.mirror:
            out = out + self.n * flips(out, e, self.seed)
        return out

    def next(self) -> torch.Tensor:
        idx = self.ids(self.consumed, self.batch)
        self.consumed += self.batch
        if self.device.type == "cuda":  # pinned, so the copy does not wait for the queued step
            return idx.pin_memory().to(self.device, non_blocking=True)
        return idx.to(self.device)

    def state_dict(self) -> dict:
        return {"consumed": self.consumed, "seed": self.seed, "n": self.n, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n:
            raise GankitError(f"checkpoint's sampler covered {state['n']} examples, the shards now hold {self.n}")
        self.consumed, self.seed = int(state["consumed"]), int(state["seed"])


def flips(ids: torch.Tensor, epoch: torch.Tensor, seed: int) -> torch.Tensor:
    """0/1 per visit: a hash of (seed, epoch, sample id) (splitmix-style mixing in int64)."""
    h = ids * 0x9E3779B1 + epoch * 0x85EBCA77 + seed * 0xC2B2AE3D
    h = (h ^ (h >> 15)) * 0x2C1B3C6D
    return (h >> 17) & 1


class _ShardStream(torch.utils.data.IterableDataset):
    """What each DataLoader worker runs: the stream from `start`, batch k = worker id + j * workers,
    this rank's slice [a, a + b) of it decoded: yields (uint8 (b, C, H, W), ids)."""

    def __init__(self, data: "ShardData", sampler: ShardSampler, start: int, shard: tuple[int, int]):
        self.data, self.sampler, self.start, self.shard = data, sampler, start, shard

    def _stream(self, p: int):
        """(id, sample) from stream position p on, forever."""
        s, urls = self.sampler, self.data.urls
        e, j, skip = s.locate(p)
        while True:
            perm = s.order(e).tolist()
            for jj in range(j, len(perm)):
                shard = perm[jj]
                first = int(s.starts[shard])
                k = 0
                for sample in _samples(urls[shard]):
                    if not _image_of(sample):
                        continue
                    if k >= skip:
                        sid = first + k
                        yield (sid + s.n * int(flips(torch.tensor(sid), torch.tensor(e), s.seed)) if s.mirror else sid), sample
                    k += 1
                skip = 0
            e, j = e + 1, 0

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, W = (info.id, info.num_workers) if info else (0, 1)
        B, (a, b) = self.sampler.batch, self.shard
        it = self._stream(self.start + w * B)
        while True:
            xs, ids = [], []
            for i in range(B):
                sid, sample = next(it)
                if a <= i < a + b:
                    try:
                        xs.append(self.data.decode(sid, sample))
                    except GankitError as e:  # handed back as data: see stream.ImageSource.item
                        yield None, str(e)
                        return
                    ids.append(sid)
            yield torch.stack(xs), torch.tensor(ids, dtype=torch.int64)
            for _ in range((W - 1) * B):  # the other workers' batches
                next(it)


class ShardData(StreamData):
    """`StreamData` over WebDataset shards (see the module docstring)."""

    def __init__(self, source: str, urls: list[str], counts: list[int], labels, shape, native, device,
                 workers: int, prefetch: int, mirror: bool, notes: list[str]):
        self.urls, self.counts, self.native, self.name = urls, counts, tuple(native), source
        self._shape, self.device = tuple(shape), torch.device(device)
        self.workers, self.prefetch, self.mirror = workers, prefetch, mirror
        self.labels_np = labels
        self.classes = None if labels is None else [str(i) for i in range(int(labels.max()) + 1)]
        self.y = None if labels is None else torch.from_numpy(labels).to(self.device)
        self.notes = notes
        self._loader = None

    def __len__(self) -> int:
        return int(sum(self.counts))

    def conform(self, resolution, channels) -> ShardData:
        c, h, w = self._shape
        shape = (channels or c, resolution or h, resolution or w)
        if shape != self._shape:
            self.notes.append(f"each image converted to {'x'.join(map(str, shape))} as it is read")
            self._shape = shape
            self.close()
        return self

    def sampler(self, batch: int, seed: int, device) -> ShardSampler:
        return ShardSampler(self.counts, batch, seed, self.mirror, device)

    def decode(self, sid: int, sample: dict) -> torch.Tensor:
        n = len(self)
        ext, raw = _image_of(sample)
        where = f"{sample.get('__url__')}:{sample['__key__']}.{ext}"
        x = conform_image(torch.from_numpy(read_image(io.BytesIO(raw), where)).permute(2, 0, 1),
                          self.native, self._shape, where)
        return x.flip(-1) if sid >= n else x

    def read(self, idx) -> torch.Tensor:
        """Images by id, streaming the shards in stored order up to the last one needed."""
        want = torch.as_tensor(idx).tolist()
        n = len(self)
        need = {i % n for i in want}
        got: dict[int, torch.Tensor] = {}
        starts = np.cumsum([0] + list(self.counts))
        for s, url in enumerate(self.urls):
            if not need - got.keys():
                break
            if not any(starts[s] <= i < starts[s + 1] for i in need):
                continue
            k = 0
            for sample in _samples(url):
                if _image_of(sample):
                    if starts[s] + k in need:
                        got[int(starts[s] + k)] = self.decode(int(starts[s] + k), sample)
                    k += 1
        return torch.stack([got[i % n].flip(-1) if i >= n else got[i % n] for i in want])

    def _make_loader(self, sampler, pos, shard):
        self.close()
        w = self.workers
        from gankit.data.stream import _worker_init, private_generator

        return torch.utils.data.DataLoader(
            _ShardStream(self, sampler, pos, shard), batch_size=None, num_workers=w,
            prefetch_factor=self.prefetch if w else None, pin_memory=self.device.type == "cuda",
            worker_init_fn=_worker_init if w else None, generator=private_generator())

    def batches(self, batch: int, seed: int = 0, start: int = 0):
        sampler = self.sampler(batch, seed, "cpu")
        for x, got in self._make_loader(sampler, start, (0, batch)):
            if x is None:
                raise GankitError(got)
            yield x.to(self.device, non_blocking=True)

    def __getstate__(self) -> dict:  # what a worker receives: no loader, no device tensors
        return {**self.__dict__, "_loader": None, "y": None}


def open_shards(source: str, resolution, channels, device, load: str, memory_budget, workers: int, prefetch: int,
                mirror: bool) -> ShardData:
    """WebDataset shards, always streamed (data.load=memory is refused: decode them into a zip with
    gankit dataset for that)."""
    if load == "memory":
        raise GankitError(f"data.load=memory: {source} is WebDataset shards, which stream only (data.load auto or "
                          "stream); for a set held in memory, write a zip with gankit dataset")
    urls = expand(source)
    counts, labels = [], []
    for u in urls:
        c, ls = _scan(u)
        counts.append(c)
        labels += ls
    if not sum(counts):
        raise GankitError(f"{source}: no samples with an image ({', '.join(EXTS)}) in its {len(urls)} shards")
    has = [v is not None for v in labels]
    if any(has) and not all(has):
        raise GankitError(f"{source}: {has.count(False)} of {len(labels)} samples have no .cls label; label all or none")
    y = np.array(labels, dtype=np.int64) if all(has) else None
    first = next(s for s in _samples(urls[counts.index(next(c for c in counts if c))]) if _image_of(s))
    ext, raw = _image_of(first)
    native = tuple(torch.from_numpy(read_image(io.BytesIO(raw), f"{first['__url__']}:{first['__key__']}.{ext}"))
                   .permute(2, 0, 1).shape)
    shape = (channels or native[0], resolution or native[1], resolution or native[2])
    notes = [f"streaming from {len(urls)} WebDataset shards: {sum(counts):,} images of {'x'.join(map(str, shape))} "
             f"({gb(sum(counts) * int(np.prod(shape)))} decoded; shards always stream), "
             f"{workers or 'no'} worker{'s' if workers != 1 else ''}" + (", mirrored" if mirror else "")]
    return ShardData(source, urls, counts, y, shape, native, device, workers, prefetch, mirror, notes)
