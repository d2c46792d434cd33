"""The dataset tool (`gankit dataset`): a folder, zip, `.npz` or video in, a dataset zip out.

The zip has the layout stylegan2-ada-pytorch's `dataset_tool.py` writes, so that zips made by
either tool train in both: image i is the PNG `{i // 1000:05d}/img{i:08d}.png`, stored (not
deflated: PNG is compressed already), and `dataset.json` at the root holds
`{"labels": [[name, label], ...]}` or `{"labels": null}`. gankit adds a `"gankit"` key those
readers ignore: count, resolution, channels, class names, source, transform, what was skipped and
converted, and `sha256`, the content hash (`content_hash`) a reader verifies the images by.

Every image takes one path (`_prepare`): decode, EXIF orientation, one colour mode (alpha
composited on black, palettes expanded, CMYK to RGB, 16-bit scaled to 8), the channel count, then
the transform to R x R. Only `resize` ever upscales: with the other transforms an image smaller
than the target is skipped and named. The zip is written under a hidden name beside OUT and
renamed into place only once complete (`gankit.disk.atomic`), so an error, Ctrl-C or a full disk
leaves neither OUT nor a temporary file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gankit import disk
from gankit.data.tool_inputs import BAD_IMAGE, META, Source, open_source
from gankit.errors import GankitError
from gankit.media.video import VIDEO_SUFFIXES
from gankit.threads import cpu_budget

TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "resize")
RESOLUTIONS = (4, 4096)  # a dataset's side, inclusive; any size between (a model may need a power of two)
SKIP_REASONS = ("unreadable", "unsupported", "too_small", "not_image")
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grey (PNG, TIFF) as Pillow opens it
_GREY = {"1", "L", "LA", "La", *_SIXTEEN}
_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}


def content_hash(entries: Iterable[tuple[str, bytes]]) -> str:
    """The sha256 (hex) that `dataset.json`'s `gankit.sha256` records. `entries` are the
    dataset's image entries, (name, bytes), in ascending name order (Python str order; for the
    layout's names that is index order); the image entries are the zip's file entries whose
    names end in an image suffix (`IMAGE_SUFFIXES`: .png .jpg .jpeg .bmp, any case), which in
    a zip this tool wrote is every entry but `dataset.json`. For each entry, in order: its name
    in UTF-8, one zero byte, then its bytes, all fed into one sha256. Names out of order are a
    ValueError: the hash must not depend on how a zip happens to list its entries."""
    h, last = hashlib.sha256(), None
    for name, data in entries:
        if last is not None and name <= last:
            raise ValueError(f"content_hash: entry {name!r} after {last!r}; entries must be in ascending name order")
        h.update(name.encode("utf-8"))
        h.update(b"\0")
        h.update(data)
        last = name
    return h.hexdigest()


def entry_name(i: int) -> str:
    """Image i's name in the zip: `00000/img00000000.png`, 1,000 images a folder."""
    return f"{i // 1000:05d}/img{i:08d}.png"


@dataclass
class DatasetReport:
    """What `make_dataset` wrote and passed over; `summary()` says it in lines."""

    path: Path
    source: str
    kind: str  # folder, zip, arrays, video
    count: int
    resolution: int
    channels: int
    transform: str
    classes: list[str] | None
    class_counts: list[int] | None
    skipped: dict[str, int]
    converted: dict[str, int]
    sha256: str
    size: int  # bytes of the zip

    def summary(self) -> list[str]:
        colour = "grey" if self.channels == 1 else "RGB"
        skipped = sum(self.skipped.values())
        lines = [f"source:    {self.source} ({self.kind})",
                 f"written:   {self.count:,} images, {self.resolution}x{self.resolution} {colour}, {self.transform}",
                 "skipped:   " + (", ".join(f"{k.replace('_', ' ')} {n}" for k, n in self.skipped.items() if n)
                                  if skipped else "none"),
                 "converted: " + (", ".join(f"{k} {n}" for k, n in self.converted.items()) or "none")]
        if self.classes is not None:
            listed = ", ".join(f"{c} {n}" for c, n in zip(self.classes, self.class_counts or []))
            lines.append(f"classes:   {len(self.classes)} ({listed if len(listed) <= 200 else listed[:200] + '...'})")
        lines += [f"output:    {self.path} ({disk.size(self.size)})", f"sha256:    {self.sha256}"]
        return lines


@dataclass
class _Result:
    where: str
    label: Any
    data: bytes | None = None  # the PNG
    converted: tuple[str, ...] = ()
    skip: tuple[str, str] | None = None  # (reason, one line)


@dataclass(frozen=True)
class _Job:
    resolution: int
    channels: int
    transform: str
    band: int  # center-crop-wide: the picture's height inside the square
    compress_level: int


def make_dataset(source: str | Path, out: str | Path, *, resolution: int | None = None,
                 transform: str = "center-crop", height: int | None = None, max_images: int | None = None,
                 channels: int | None = None, every: int | None = None, strict: bool = False,
                 force: bool = False, compress_level: int = 0, progress: bool = False,
                 on_skip: Callable[[str, str], None] | None = None) -> DatasetReport:
    """Write the dataset zip `out` from `source` (a folder, a zip, a `.npz`/`.npy`, or a video)
    and return what was done. `resolution` is the square side (default: the images' own, when
    all share one square size); `channels` 1 or 3 (default: 1 when every image is grey);
    `height` the picture band of `center-crop-wide` (default 3/4 of the side); `every` keeps
    every K-th video frame; `max_images` caps the images written. Each skipped file is passed
    to `on_skip` as (reason, one line naming it); with `strict` the first is an error instead. `out` is refused if it
    exists, unless `force`."""
    source, out = Path(source), Path(out)
    _check_options(resolution, transform, height, max_images, channels, every, compress_level, source)
    _check_out(out, force)
    src = open_source(source, every or 1)
    try:
        if resolution is None or channels is None:
            resolution, channels = _defaults(src, source, resolution, channels)
        band = height or round(resolution * 3 / 4)
        if band > resolution:
            raise GankitError(f"--height {band}: larger than --resolution {resolution}; "
                              "center-crop-wide's picture band must fit inside the square")
        job = _Job(resolution, channels, transform, band, compress_level)
        with disk.atomic(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            count, labels, skipped, converted, digest = _write(src, job, zf, max_images, strict, progress, on_skip)
            if count == 0:
                raise GankitError(f"{source}: no image could be written ({_skip_words(skipped)}); nothing written")
            meta = {"labels": labels if src.labelled else None,
                    "gankit": {"version": 1, "count": count, "resolution": resolution, "channels": channels,
                               "classes": src.classes, "source": str(source), "transform": transform,
                               **({"height": band} if transform == "center-crop-wide" else {}),
                               "sha256": digest, "skipped": skipped, "converted": converted}}
            zf.writestr(_info(META), json.dumps(meta))  # last, as dataset_tool.py writes it
            src.close()  # before the rename: OUT may replace the source zip itself (--force)
    finally:
        src.close()
    counts = None
    if src.classes is not None:
        tally = Counter(label for _, label in labels)
        counts = [tally[i] for i in range(len(src.classes))]
    return DatasetReport(out, str(source), src.kind, count, resolution, channels, transform, src.classes, counts,
                         skipped, converted, digest, out.stat().st_size)


def _write(src: Source, job: _Job, zf: zipfile.ZipFile, max_images: int | None, strict: bool, progress: bool,
           on_skip: Callable[[str, str], None] | None):
    """Stream the source's images through `_prepare` into `zf`, in order; (count, labels,
    skipped by reason, converted by name, the content hash)."""
    from tqdm import tqdm

    total = min(src.total, max_images) if src.total is not None and max_images else (src.total or max_images)
    bar = tqdm(total=total, disable=not progress, unit="img", dynamic_ncols=True, smoothing=0.1)
    labels, skipped, converted = [], dict.fromkeys(SKIP_REASONS, 0), Counter()
    skipped["not_image"] = src.ignored
    h, count = hashlib.sha256(), 0
    try:
        with closing(_ordered(lambda item: _prepare(item, job), src.items)) as results:
            for r in results:
                bar.update(1)
                if r.skip is not None:
                    reason, line = r.skip
                    if strict:
                        raise GankitError(f"{line}; --strict stops at the first skipped file")
                    skipped[reason] += 1
                    if on_skip is not None:
                        on_skip(reason, f"skipped {line}")
                    continue
                name = entry_name(count)
                zf.writestr(_info(name), r.data)
                h.update(name.encode("utf-8") + b"\0")  # content_hash's rule, as the entries are written
                h.update(r.data)
                converted.update(r.converted)
                if src.labelled:
                    labels.append([name, r.label])
                count += 1
                if max_images is not None and count >= max_images:
                    break
    finally:
        bar.close()
    return count, labels, skipped, dict(sorted(converted.items())), h.hexdigest()


def _info(name: str) -> zipfile.ZipInfo:
    """A stored entry with a fixed date, so the same input gives a byte-identical zip."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _ordered(fn: Callable, items: Iterable) -> Iterator:
    """fn over items on a thread pool, results in the items' order, a bounded number in flight
    (memory stays flat whatever the source's size). Pillow releases the GIL while it decodes,
    resizes and encodes, so threads use the cores."""
    threads = cpu_budget()
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 4 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # stopped early (max_images, an error, Ctrl-C): drop what has not started
            for f in pending:
                f.cancel()


# --- one image -------------------------------------------------------------------------------

class _Unsupported(Exception):
    pass


def _prepare(item: tuple[str, Any, Any], job: _Job) -> _Result:
    """Decode one item and make it an R x R PNG of the job's channels, or say why it is skipped."""
    where, payload, label = item
    try:
        im = _open(payload)
        im, keys = _normalise(im, job.channels)
    except _Unsupported as e:
        return _Result(where, label, skip=("unsupported", f"{where}: {e}"))
    except BAD_IMAGE as e:
        why = "not an image format Pillow reads" if isinstance(e, UnidentifiedImageError) else e
        return _Result(where, label, skip=("unreadable", f"{where}: corrupt, truncated or not an image ({why})"))
    w, h = im.size
    out, small = _transform(im, job)
    if out is None:
        return _Result(where, label, skip=("too_small", f"{where}: {w}x{h}, smaller than the target {small}; "
                                                        f"{job.transform} would upscale it (--transform resize may)"))
    if job.transform == "resize" and (w < job.resolution or h < job.resolution):
        keys += ("upscaled",)
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=job.compress_level)
    return _Result(where, label, buf.getvalue(), keys)


def _open(payload: Any) -> Image.Image:
    """A decoded image from a file's path, a zip entry's bytes, an array, or the error met reading it."""
    if isinstance(payload, Exception):
        raise OSError(f"damaged zip entry: {payload}")
    if isinstance(payload, np.ndarray):
        return Image.fromarray(payload)
    im = Image.open(io.BytesIO(payload if isinstance(payload, bytes) else payload.read_bytes()))
    im.load()  # decode now: a truncated file fails here
    return im


def _normalise(im: Image.Image, channels: int) -> tuple[Image.Image, tuple[str, ...]]:
    """`im` upright and in mode L (channels 1) or RGB (3), with what was converted, by name."""
    keys: list[str] = []
    if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation: a phone photo is stored on its side
        im = ImageOps.exif_transpose(im)
        keys.append("EXIF rotation")
    mode = im.mode
    if mode == "F":
        raise _Unsupported("32-bit float image (mode F); its value range is unknown, convert it to 8 or 16 bits")
    grey = mode in _GREY
    if mode in _SIXTEEN:  # 0..65535 -> 0..255; convert("L") would clip at 255 instead
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(a / 257), 0, 255).astype(np.uint8))
        keys.append("16-bit")
    elif mode in _ALPHA or "transparency" in im.info:  # composited on black, as the pad canvas is
        keys += ["palette"] if mode in ("P", "PA") else []
        keys.append("alpha on black")
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), rgba).convert("RGB")
        im = im.convert("L") if grey else im  # exact: a grey image composited stays R = G = B
    elif mode == "1":
        keys.append("1-bit")
        im = im.convert("L")
    elif mode == "P":
        keys.append("palette")
        im = im.convert("RGB")
    elif mode == "CMYK":
        keys.append("CMYK")
        im = im.convert("RGB")
    elif mode not in ("L", "RGB"):  # YCbCr, LAB, HSV, ...
        keys.append(f"mode {mode}")
        im = im.convert("RGB")
    if channels == 3 and im.mode == "L":
        keys.append("grey to RGB")
        im = im.convert("RGB")
    elif channels == 1 and im.mode == "RGB":
        keys.append("RGB to grey")
        im = im.convert("L")  # ITU-R 601 luma
    return im, tuple(keys)


def _transform(im: Image.Image, job: _Job) -> tuple[Image.Image | None, str]:
    """(the R x R image, '') or (None, what it fell short of): nothing is upscaled but by `resize`.
    Lanczos throughout, as dataset_tool.py's default."""
    r, (w, h) = job.resolution, im.size
    lanczos = Image.Resampling.LANCZOS
    if job.transform == "resize":  # the whole picture, aspect ratio not kept
        return (im if (w, h) == (r, r) else im.resize((r, r), lanczos)), ""
    if job.transform == "center-crop":  # the largest centred square
        s = min(w, h)
        if s < r:
            return None, f"{r}x{r} (its shorter side is {s})"
        left, top = (w - s) // 2, (h - s) // 2
        return im.crop((left, top, left + s, top + s)).resize((r, r), lanczos), ""
    if job.transform == "pad":  # letterbox: the whole picture, centred on black
        m = max(w, h)
        if m < r:
            return None, f"{r}x{r} (its longer side is {m})"
        size = (max(1, round(w * r / m)), max(1, round(h * r / m)))
        canvas = Image.new(im.mode, (r, r))
        canvas.paste(im.resize(size, lanczos), ((r - size[0]) // 2, (r - size[1]) // 2))
        return canvas, ""
    # center-crop-wide: the largest centred crop of aspect R : band, as a full-width band on black
    b = job.band
    cw, ch = (round(h * r / b), h) if w * b > h * r else (w, round(w * b / r))
    if cw < r or ch < b:
        return None, f"{r}x{b} (its centred {r}:{b} crop is {cw}x{ch})"
    left, top = (w - cw) // 2, (h - ch) // 2
    canvas = Image.new(im.mode, (r, r))
    canvas.paste(im.crop((left, top, left + cw, top + ch)).resize((r, b), lanczos), (0, (r - b) // 2))
    return canvas, ""


# --- options and the output ------------------------------------------------------------------

def _check_options(resolution, transform, height, max_images, channels, every, compress_level, source) -> None:
    lo, hi = RESOLUTIONS
    if resolution is not None and not lo <= resolution <= hi:
        raise GankitError(f"--resolution {resolution}: expected a square side from {lo} to {hi} pixels")
    if transform not in TRANSFORMS:
        raise GankitError(f"--transform {transform}: expected one of {', '.join(TRANSFORMS)}")
    if height is not None:
        if transform != "center-crop-wide":
            raise GankitError(f"--height {height}: only center-crop-wide has a picture band; "
                              f"--transform is {transform}")
        if height < 1:
            raise GankitError(f"--height {height}: expected a band height >= 1 pixel")
    if channels is not None and channels not in (1, 3):
        raise GankitError(f"--channels {channels}: expected 1 (grey) or 3 (RGB)")
    if max_images is not None and max_images < 1:
        raise GankitError(f"--max-images {max_images}: expected a number >= 1")
    if every is not None:
        if every < 1:
            raise GankitError(f"--every {every}: expected a number of frames >= 1")
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise GankitError(f"--every {every}: keeps every K-th frame of a video, and {source} is not one "
                              f"({', '.join(VIDEO_SUFFIXES)})")
    if not 0 <= compress_level <= 9:
        raise GankitError(f"--compress-level {compress_level}: expected 0 (none, fastest to read) to 9 (smallest)")


def _check_out(out: Path, force: bool) -> None:
    if out.suffix.lower() != ".zip":
        raise GankitError(f"{out}: the output must be a .zip (the layout stylegan2-ada-pytorch reads)")
    if out.is_dir():
        raise GankitError(f"{out}: is a folder; give the path of the .zip to write")
    if out.exists() and not force:
        raise GankitError(f"{out}: already exists; pass --force to replace it")


def _defaults(src: Source, source: Path, resolution: int | None, channels: int | None) -> tuple[int, int]:
    """The resolution and channels the images themselves say, from their headers (no decoding):
    their one square size; 1 channel when every image is grey, else 3."""
    sizes: dict[tuple[int, int], str] = {}
    colour = False
    for where, size, mode in src.shapes():
        sizes.setdefault(size, where)
        colour = colour or mode not in _GREY
        if resolution is not None and colour:
            break  # nothing more to learn
    if not sizes:
        raise GankitError(f"{source}: none of its images could be read")
    if resolution is None:
        (w, h), *others = sizes
        if others or w != h:
            found = ", ".join(f"{w}x{h} ({where.removeprefix(f'{source}/').removeprefix(f'{source}:')})"
                              for (w, h), where in list(sizes.items())[:3])
            raise GankitError(f"{source}: its images are not all one square size (found {found}); "
                              "give --resolution")
        lo, hi = RESOLUTIONS
        if not lo <= w <= hi:
            raise GankitError(f"{source}: its images are {w}x{w}; give --resolution from {lo} to {hi}")
        resolution = w
    return resolution, channels or (3 if colour else 1)


def _skip_words(skipped: dict[str, int]) -> str:
    words = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in skipped.items() if n)
    return f"skipped: {words}" if words else "it holds no images"
