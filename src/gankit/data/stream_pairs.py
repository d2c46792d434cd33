"""Two-domain folders on the streaming path: `StreamedPairs`, the surface of `PairedData` (a, b,
paired, name, notes, meta) with each domain a `StreamData` (`gankit.data.stream`) instead of a
tensor. A paired set's two domains are read with the same sampler, so a[i] and b[i] arrive
together; an unpaired set's with one sampler each. Order, resume and data-parallel slices are
the streaming path's. Side-by-side AB images (one file per pair) load in memory only.
"""

from __future__ import annotations

from pathlib import Path

from gankit.data.archive import ImageArchive
from gankit.data.files import list_images
from gankit.data.pairs import folder_layout, paired_files
from gankit.data.stream import StreamData, choose
from gankit.errors import GankitError


class StreamedPairs:
    resident = False

    def __init__(self, a: StreamData, b: StreamData, paired: bool, name: str, notes: list[str]):
        self.a, self.b, self.paired, self.name, self.notes = a, b, paired, name, notes
        self.y_a = self.y_b = None

    def meta(self) -> dict:
        return {"name": self.name, "paired": self.paired, "shape_a": list(self.a.shape),
                "shape_b": list(self.b.shape), "count_a": len(self.a), "count_b": len(self.b)}

    def to(self, device) -> StreamedPairs:
        self.a.to(device), self.b.to(device)
        return self

    def close(self) -> None:
        self.a.close(), self.b.close()


def open_pairs(source: str, resolution: int | None, device, load: str, memory_budget: float | None,
               workers: int, prefetch: int) -> StreamedPairs | None:
    """A folder's training split streamed, or None when it should load in memory (it fits the
    budget, or its layout is side-by-side AB)."""
    root = Path(source).expanduser()
    if load == "memory" or not root.is_dir():
        return None
    kind, dir_a, dir_b = folder_layout(root, source, "train")
    if kind.startswith("side"):
        if load == "stream":
            raise GankitError(f"data.load=stream: {source} holds side-by-side AB images, which load in memory; "
                              "streaming reads A/ + B/ (paired) or trainA/ + trainB/ (unpaired)")
        return None
    if kind == "paired":
        files_a, files_b, _ = paired_files(dir_a, dir_b)
    else:
        files_a, files_b = list_images(dir_a)[0], list_images(dir_b)[0]
    arch_a, arch_b = ImageArchive(dir_a, files_a), ImageArchive(dir_b, files_b)
    (ca, ha, wa), (cb, hb, wb) = arch_a.shape, arch_b.shape
    if resolution is None and (hb, wb) != (ha, wa):
        raise GankitError(f"{source}: A's images are {wa}x{ha}, B's {wb}x{hb}; streamed domains need one size: "
                          "set data.resolution")
    shape_a, shape_b = (ca, resolution or ha, resolution or wa), (cb, resolution or ha, resolution or wa)
    size = (len(arch_a) * ca + len(arch_b) * cb) * shape_a[1] * shape_a[2]  # uint8 bytes decoded
    stream, why = choose(load, size, memory_budget, device)
    if not stream:
        return None
    what = f"{'paired' if kind == 'paired' else 'unpaired'}, A {len(arch_a):,} of {'x'.join(map(str, shape_a))}, " \
           f"B {len(arch_b):,} of {'x'.join(map(str, shape_b))}"
    a = StreamData(arch_a, f"{source}:A", shape_a, device, workers, prefetch)
    b = StreamData(arch_b, f"{source}:B", shape_b, device, workers, prefetch)
    note = f"streaming from {root.name}/: {what} ({why}), {workers or 'no'} worker{'s' if workers != 1 else ''} per domain"
    return StreamedPairs(a, b, kind == "paired", source, [note])
