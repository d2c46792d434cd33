"""What the dataset tool (`gankit.data.tool`) reads: a folder of images, a zip of images, a
`.npz`/`.npy` of arrays, or a video's frames, each as a `Source`: its items in order, their
labels and class names, and their sizes from the headers alone.

Labels come from a `dataset.json` at the root (stylegan2-ada-pytorch's and gankit's own), or else
from class subfolders: one class per first-level subfolder, in sorted order, and then every image
must sit in one. A zip whose entries all sit under one folder is read as that folder (a zipped
folder), unless it has a `dataset.json` at its root.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from gankit.errors import GankitError
from gankit.media.images import IMAGE_SUFFIXES
from gankit.media.video import VIDEO_SUFFIXES

READ_SUFFIXES = (*IMAGE_SUFFIXES, ".webp", ".tif", ".tiff", ".gif")  # Pillow decodes them all
ARRAY_SUFFIXES = (".npz", ".npy")
META = "dataset.json"
BAD_IMAGE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass
class Source:
    kind: str
    items: Iterator[tuple[str, Any, Any]]  # (where, payload for _open, label or None)
    total: int | None  # how many items, where known up front (for the progress bar)
    shapes: Callable[[], Iterator[tuple[str, tuple[int, int], str]]]  # (where, (W, H), mode), headers only
    labelled: bool = False
    classes: list[str] | None = None
    ignored: int = 0  # files that are not images
    close: Callable[[], None] = lambda: None


def open_source(source: Path, every: int) -> Source:
    """The source at `source`, by what it is: a folder, a .zip, a .npz/.npy, or a video whose
    every `every`-th frame is kept."""
    if not source.exists():
        raise GankitError(f"{source}: no such file or folder")
    if source.is_dir():
        return _folder(source)
    suffix = source.suffix.lower()
    if suffix == ".zip":
        return _zip(source)
    if suffix in ARRAY_SUFFIXES:
        return _arrays(source)
    if suffix in VIDEO_SUFFIXES:
        return _video(source, every)
    raise GankitError(f"{source}: not a source the dataset tool reads; expected a folder of images, a .zip, "
                      f"a .npz/.npy or a video ({', '.join(VIDEO_SUFFIXES)})")


def _is_image(name: str) -> bool:
    return name.lower().endswith(READ_SUFFIXES)


def _folder(root: Path) -> Source:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    names = [n for n in files if _is_image(n)]
    if not names:
        raise GankitError(f"{root}: holds no images ({len(files)} other files); looked for "
                          f"{', '.join(READ_SUFFIXES)} recursively")
    meta = _read_meta(root / META) if META in files else None
    labelled, labels, classes = _labels(names, meta, root / META if meta is not None else root)

    def shapes():
        for n in names:
            try:
                with Image.open(root / n) as im:
                    yield str(root / n), im.size, im.mode
            except BAD_IMAGE:
                continue

    items = ((str(root / n), root / n, labels.get(n)) for n in names)
    return Source("folder", items, len(names), shapes, labelled, classes, len(files) - len(names) - (meta is not None))


def _zip(path: Path) -> Source:
    try:
        z = zipfile.ZipFile(path)
        listed = [n for n in z.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as e:
        raise GankitError(f"{path}: not a readable zip archive ({e})") from None
    # macOS's resource forks and hidden files are never images
    files = sorted(n for n in listed if not any(p.startswith(".") or p == "__MACOSX" for p in n.split("/")))
    root = ""
    tops = {n.split("/")[0] for n in files}
    if META not in files and len(tops) == 1 and all("/" in n for n in files):
        root = f"{tops.pop()}/"  # a zipped folder: read as that folder
    names = [n[len(root):] for n in files if _is_image(n)]
    if not names:
        z.close()
        raise GankitError(f"{path}: holds no images ({len(files)} other files); expected "
                          f"{', '.join(READ_SUFFIXES)} files, as gankit dataset and dataset_tool.py write")
    meta = None
    if f"{root}{META}" in files:
        meta = _read_meta(path, z.read(f"{root}{META}"), f"{path}:{root}{META}")
    labelled, labels, classes = _labels(names, meta, f"{path}:{root}{META}" if meta is not None else path)

    def shapes():
        for n in names:
            try:
                with z.open(root + n) as f, Image.open(f) as im:
                    yield f"{path}:{root}{n}", im.size, im.mode
            except (*BAD_IMAGE, zipfile.BadZipFile):
                continue

    def items():
        for n in names:
            try:
                data = z.read(root + n)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
                # a damaged (CRC), encrypted or oddly compressed entry: an unreadable image
                data = e
            yield f"{path}:{root}{n}", data, labels.get(n)

    ignored = len(files) - len(names) - (meta is not None)
    return Source("zip", items(), len(names), shapes, labelled, classes, ignored, z.close)


def _read_meta(path: Path, data: bytes | None = None, where: str | None = None) -> dict:
    where = where or str(path)
    try:
        meta = json.loads(path.read_bytes() if data is None else data)
    except (ValueError, OSError) as e:
        raise GankitError(f"{where}: not readable JSON ({e}); expected {{\"labels\": [[name, label], ...]}} "
                          "or {\"labels\": null}") from None
    if not isinstance(meta, dict) or "labels" not in meta:
        raise GankitError(f"{where}: has no 'labels' key; expected {{\"labels\": [[name, label], ...]}} "
                          "or {\"labels\": null}")
    return meta


def _labels(names: list[str], meta: dict | None, where) -> tuple[bool, dict[str, Any], list[str] | None]:
    """(labelled, {name: label}, class names) from `dataset.json` where there is one, else from
    class subfolders: one class per first-level folder, in sorted order."""
    if meta is None:
        tops = [n.split("/") for n in names]
        if not any(len(t) > 1 for t in tops):
            return False, {}, None
        loose = next((n for n, t in zip(names, tops) if len(t) == 1), None)
        if loose is not None:
            raise GankitError(f"{where}: {loose} sits at the top while other images sit in class subfolders; "
                              "move it into a class subfolder or out of the folder")
        classes = sorted({t[0] for t in tops})
        index = {c: i for i, c in enumerate(classes)}
        return True, {n: index[t[0]] for n, t in zip(names, tops)}, classes
    if meta["labels"] is None:
        return False, {}, None
    pairs = meta["labels"]
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                              for p in pairs):
        raise GankitError(f"{where}: 'labels' must be a list of [name, label] pairs, or null")
    labels = dict(pairs)
    _check_label_values(list(labels.values()), where)
    missing = [n for n in names if n not in labels]
    if missing:
        raise GankitError(f"{where}: {len(missing)} of {len(names)} images have no label (first: {missing[0]}); "
                          "every image needs one, or 'labels': null")
    present = set(names)
    extra = [n for n in labels if n not in present]
    if extra:
        raise GankitError(f"{where}: labels {len(extra)} files that are not there (first: {extra[0]}); "
                          "the labels do not match the images")
    # class names, where a gankit zip recorded them and they name every label
    classes = (meta.get("gankit") or {}).get("classes")
    named = (isinstance(classes, list) and all(isinstance(c, str) for c in classes)
             and all(isinstance(v, int) and v < len(classes) for v in labels.values()))
    return True, labels, classes if named else None


def _check_label_values(values: list, where) -> None:
    """Class indices (int >= 0) or, as stylegan2-ada-pytorch also reads, equal-length number lists."""
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return
    if all(isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
           for v in values) and len({len(v) for v in values}) <= 1:
        return
    bad = next(v for v in values if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0))
    raise GankitError(f"{where}: label {json.dumps(bad)} is not a class index (an integer >= 0) or, for every "
                      "image, a list of numbers of one length")


def _arrays(path: Path) -> Source:
    """A `.npz` (images under 'x' or 'images', optional labels under 'y' or 'labels') or a `.npy`
    of images. A `.npy` is memory-mapped; a `.npz`'s arrays are read whole (numpy cannot map
    inside a zip)."""
    try:
        if path.suffix.lower() == ".npy":
            x, y = np.load(path, mmap_mode="r", allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                xk = next((k for k in ("x", "images") if k in keys), None)
                if xk is None:
                    raise GankitError(f"{path}: has keys {keys}; expected 'x' or 'images', and optional 'y' or 'labels'")
                yk = next((k for k in ("y", "labels") if k in keys), None)
                x, y = z[xk], (z[yk] if yk else None)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise GankitError(f"{path}: cannot read the array file ({e})") from None
    x, to_uint8 = _as_images(x, path)  # (N, H, W) or (N, H, W, C)
    labelled = y is not None
    if labelled:
        if y.ndim not in (1, 2) or len(y) != len(x) or not np.issubdtype(y.dtype, np.number):
            raise GankitError(f"{path}: {len(x)} images but labels of shape {y.shape}, dtype {y.dtype}; expected "
                              f"({len(x)},) class indices or ({len(x)}, K) numbers")
        if y.ndim == 1 and not (np.issubdtype(y.dtype, np.integer) and y.min() >= 0):
            raise GankitError(f"{path}: 1-D labels must be class indices (integers >= 0), got dtype {y.dtype}")
        y = y.tolist()
    first = Image.fromarray(to_uint8(x[0]))

    def shapes():
        yield f"{path}[0]", first.size, first.mode

    items = ((f"{path}[{i}]", to_uint8(x[i]), y[i] if labelled else None) for i in range(len(x)))
    return Source("arrays", items, len(x), shapes, labelled)


def _as_images(x: np.ndarray, path: Path) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(images as (N, H, W) or (N, H, W, C), C = 3 or 4, from NCHW or NHWC; the function making
    one of them uint8). uint8, integers in 0..255, or float in [0, 1] are accepted; the range is
    checked here, once, and each image converted as it is read."""
    if x.ndim == 4 and x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[3] in (1, 3, 4))) or x.size == 0:
        raise GankitError(f"{path}: images have shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
                          "with C = 1, 3 or 4")
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.dtype == np.uint8:
        return x, np.ascontiguousarray
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.floating):
        if not (lo >= 0 and hi <= 1):
            raise GankitError(f"{path}: float images range over [{lo:g}, {hi:g}]; expected [0, 1] (or uint8)")
        return x, lambda a: np.round(np.asarray(a, dtype=np.float64) * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and lo >= 0 and hi <= 255:
        return x, lambda a: np.asarray(a).astype(np.uint8)
    raise GankitError(f"{path}: images have dtype {x.dtype}" + (f" ranging over [{lo}, {hi}]" if x.dtype.kind in "iu" else "")
                      + "; expected uint8 (0-255) or float in [0, 1]")


def _video(path: Path, every: int) -> Source:
    from gankit.media.video import probe_video, read_frames

    info = probe_video(path)
    total = -(-info.n_frames // every) if info.n_frames else None

    def shapes():
        yield str(path), info.size, "RGB"

    items = ((f"{path} frame {i}", f, None) for i, f in enumerate(read_frames(path)) if i % every == 0)
    return Source("video", items, total, shapes, close=items.close)  # the decoder, when stopped early
