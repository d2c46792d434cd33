"""Users' own data: folders of images, `.npz`/`.npy` arrays, IDX files, medical scans.

Every loader returns uint8 (N, C, H, W) images and optional int64 labels. Problems that lose
nothing (non-image files, mixed sizes) are reported in `notes`. A few unreadable images among
many are skipped and reported in one note: one corrupt JPEG in a folder of thousands should not
stop a run; `strict=True` makes the first one an error instead. Problems that would train on the
wrong data (most of a folder unreadable, wrong keys, mismatched counts) raise a one-line
`GankitError`. The folder helpers here (`list_images`, `read_images`, `stack_images`) are shared
with the paired-data layouts in `gankit.data.pairs`. DICOM series and NIfTI volumes in a folder
(or one such file, or a zip of them) read as greyscale slices through `gankit.media.medical`
(`read_folder`).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gankit.data.dataset import Dataset
from gankit.data.idx import labels_path_for, read_idx
from gankit.errors import GankitError
from gankit.media import medical
from gankit.media.images import IMAGE_SUFFIXES, resize_uint8

SHOW_FIRST = 3  # how many file names a note or an error lists


def load_folder(root: Path, name: str, strict: bool = False) -> Dataset:
    """Images under `root`, recursively. Images in subfolders of `root` take the subfolder's
    name as their class label (all of them must then sit in such a subfolder). Unreadable images
    are skipped with a note unless `strict` (see `read_images`). DICOM series and NIfTI volumes
    among them give their slices (`read_folder`)."""
    images, skipped = list_images(root, scans=True)
    class_parts(root, images)
    sources, _, arrays, bad, scan_notes = read_folder(images, root, strict)
    # Classes from the readable images only, so that no label is left without examples.
    classes, y = folder_labels(class_parts(root, sources))
    out, resized = stack_images(arrays)
    notes = [n for n in (f"skipped {skipped} non-image files" if skipped else None,
                         unreadable_note(bad, root), *scan_notes, resized) if n]
    return Dataset(out, None if y is None else torch.from_numpy(y), name, classes=classes, notes=notes)


def zip_holds_scans(path: Path) -> bool:
    """Whether a zip has DICOM or NIfTI entries (by suffix, or a suffixless entry with DICOM's
    DICM marker at byte 128)."""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = info.filename.rsplit("/", 1)[-1]
                if info.is_dir() or name.startswith("."):
                    continue
                if medical.is_nifti(Path(name)) or Path(name).suffix.lower() in medical.DICOM_SUFFIXES:
                    return True
                if "." not in name and name.upper() != "DICOMDIR" and z.open(info).read(132)[128:] == b"DICM":
                    return True
    except (zipfile.BadZipFile, OSError) as e:
        raise GankitError(f"{path}: not a readable zip ({e})") from None
    return False


def load_scan_zip(path: Path, name: str, strict: bool = False) -> Dataset:
    """A zip holding DICOM series and NIfTI volumes (and images, beside them), read as the folder
    it packs (`load_folder`: each folder's DICOM files one series, the first subfolder the
    class). It is unpacked to a temporary folder first (pydicom and nibabel read files; a series
    is read whole anyway) that is removed when read; a zip whose entries all sit in one folder is
    that folder. Errors and notes name the zip, not the temporary folder."""
    with tempfile.TemporaryDirectory(prefix="gankit-scans-") as tmp:
        try:
            with zipfile.ZipFile(path) as z:
                z.extractall(tmp)  # member names made safe by zipfile: no absolute paths, no '..'
        except (zipfile.BadZipFile, OSError) as e:
            raise GankitError(f"{path}: not a readable zip ({e})") from None
        root = Path(tmp)
        tops = [p for p in root.iterdir() if not p.name.startswith(".")]
        if len(tops) == 1 and tops[0].is_dir():
            root = tops[0]

        def named(text: str) -> str:
            """The temporary folder's name in a message or note (absolute, or as the scan notes
            write it, relative to its parent) replaced by the zip's."""
            text = text.replace(f"{root}/", f"{path}:").replace(str(root), str(path))
            return f"{path.name}:{text[len(root.name) + 1:]}" if text.startswith(f"{root.name}/") else text

        try:
            data = load_folder(root, name, strict)
        except GankitError as e:
            raise GankitError(named(str(e))) from None
    data.notes = [named(n) for n in data.notes]
    return data


def class_parts(root: Path, images: list[Path]) -> list[tuple[str, ...]]:
    """Each image's path parts under `root`; refuses a folder that mixes class subfolders with
    images at its top (which class would those be?)."""
    tops = [p.relative_to(root).parts for p in images]
    if any(len(t) > 1 for t in tops) and any(len(t) == 1 for t in tops):
        loose = next(images[i] for i, t in enumerate(tops) if len(t) == 1)
        raise GankitError(f"{loose}: image at the top of a folder whose other images sit in class "
                          "subfolders; move it into a class subfolder or out of the folder")
    return tops


def folder_labels(tops: list[tuple[str, ...]]) -> tuple[list[str] | None, np.ndarray | None]:
    """(class names, int64 labels) from images' path parts (`class_parts`): the first subfolder
    is the class, names sorted; (None, None) when every image sits at the top."""
    if not any(len(t) > 1 for t in tops):
        return None, None
    classes = sorted({t[0] for t in tops})
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[t[0]] for t in tops], dtype=np.int64)


def list_images(root: Path, recursive: bool = True, scans: bool = False) -> tuple[list[Path], int]:
    """(image files under `root`, sorted; how many other files were passed over). An empty
    result is an error naming the folder. `scans`: DICOM and NIfTI files count as images too
    (for the readers that go through `read_folder`)."""
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES or (scans and medical.is_medical(p))]
    skipped = len(files) - len(images)
    if not images:
        looked = (*IMAGE_SUFFIXES, *medical.DICOM_SUFFIXES, *medical.NIFTI_SUFFIXES) if scans else IMAGE_SUFFIXES
        raise GankitError(f"{root}: no images found (looked for {', '.join(looked)}"
                          f"{' recursively' if recursive else ''}"
                          f"{f'; skipped {skipped} other files' if skipped else ''})")
    return images, skipped


def read_folder(paths: list[Path], root: Path, strict: bool = False):
    """A folder's images and medical scans (DICOM series, NIfTI volumes: `gankit.media.medical`,
    each slice an image, windowed to 8 bits). Returns, per readable image or slice: its file, its
    name under `root`, its uint8 (H, W, C) array; then the unreadable image files skipped
    (`read_images`) and the notes on the scans. A scan that does not read is an error, never
    skipped: a series with a missing slice is a damaged volume."""
    scans = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES and medical.is_medical(p)]
    plain = [p for p in paths if p not in set(scans)]
    decoded, bad = read_images(plain, root, strict) if plain else ([], [])
    good = [(p, a) for p, a in zip(plain, decoded) if a is not None]
    sources, arrays = [p for p, _ in good], [a for _, a in good]
    names, notes = [p.relative_to(root).as_posix() for p in sources], []
    if scans:
        s, n, a, notes = medical.folder_slices(scans, root)
        sources, names, arrays = sources + s, names + n, arrays + a
    return sources, names, arrays, bad, notes


def load_scan(path: Path, name: str) -> Dataset:
    """One DICOM file or NIfTI volume as a set of greyscale slices (`medical.folder_slices`)."""
    _, _, arrays, notes = medical.folder_slices([path], path.parent)
    out, resized = stack_images(arrays)
    return Dataset(out, None, name, notes=notes + ([resized] if resized else []))


def read_images(paths: list[Path], root: Path, strict: bool = False) -> tuple[list[np.ndarray | None], list[Path]]:
    """Decode every path (`read_image`): (arrays, with None where a file is unreadable; those files).
    With `strict` the first unreadable file raises instead. More than half unreadable is an error
    naming `root`: that is not the odd damaged file but the wrong folder."""
    arrays, bad, first_error = [], [], None
    for p in paths:
        try:
            arrays.append(read_image(p))
        except GankitError as e:
            if strict:
                raise
            arrays.append(None)
            bad.append(p)
            first_error = first_error or e
    if 2 * len(bad) > len(paths):
        names = name_list([p.relative_to(root).as_posix() for p in bad])
        raise GankitError(f"{root}: {len(bad)} of {len(paths)} images are unreadable ({names}); "
                          f"the first: {first_error}")
    return arrays, bad


def unreadable_note(bad: list[Path], root: Path) -> str | None:
    """The one note for skipped files: 'skipped 3 unreadable images (a.jpg, b.png, c.jpg)'."""
    if not bad:
        return None
    return f"skipped {len(bad)} unreadable images ({name_list([p.relative_to(root).as_posix() for p in bad])})"


def name_list(names: list[str]) -> str:
    """'a, b' or 'first: a, b, c' when there are more than SHOW_FIRST names."""
    shown = ", ".join(names[:SHOW_FIRST])
    return shown if len(names) <= SHOW_FIRST else f"first: {shown}"


def stack_images(arrays: list[np.ndarray], size: tuple[int, int] | None = None) -> tuple[torch.Tensor, str | None]:
    """(H, W, C) uint8 arrays -> one uint8 (N, C, H, W) tensor and a note on what was resized.
    One channel count for all: grey if every image is grey, else RGB. One size: `size`, or the
    most common one (images of other sizes are resized to it, antialiased)."""
    channels = 1 if all(a.shape[2] == 1 for a in arrays) else 3
    size = size or Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    out = torch.empty((len(arrays), channels, *size), dtype=torch.uint8)
    resized = 0
    for i, a in enumerate(arrays):
        t = torch.from_numpy(a).permute(2, 0, 1)  # (C, H, W)
        if t.shape[0] != channels:
            t = t.expand(3, -1, -1)
        if tuple(t.shape[1:]) != tuple(size):
            t = resize_uint8(t[None], size)[0]
            resized += 1
        out[i] = t
    note = f"resized {resized} images of other sizes to the most common size {size[0]}x{size[1]}" if resized else None
    return out, note


def read_image(path: Path | BinaryIO, where: str | Path | None = None) -> np.ndarray:
    """(H, W, 1) or (H, W, 3) uint8; alpha is dropped, palettes expanded. `path` may be an open
    binary file (a zip entry), named `where` in messages. A file that does not decode is a
    one-line GankitError naming it."""
    try:
        with Image.open(path) as im:
            im.load()  # decode now: truncated files fail here, not later
            mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
            if im.mode in ("LA",):
                mode = "L"
            a = np.array(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise GankitError(f"{where or path}: corrupt or truncated image ({e})") from None
    return a[:, :, None] if a.ndim == 2 else a


def image_header(path: Path) -> tuple[int, int, int]:
    """(H, W, C) of an image file from its header, without decoding it (C as `read_image` gives)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return h, w, 1 if im.mode in ("1", "L", "I;16", "I", "F", "LA") else 3
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise GankitError(f"{path}: corrupt or truncated image ({e})") from None


class LazyImages:
    """Images of a large folder, decoded only when one is indexed: `shapes` (H, W, C) from the
    headers, `self[i]` the uint8 (H, W, channels) array. For the crop pools of super-resolution
    and inpainting, which draw from a few thousand of a folder's images: the rest are never
    decoded. A file whose header reads but whose data does not is an error when it is decoded."""

    def __init__(self, paths: list[Path], shapes: list[tuple[int, int, int]], channels: int):
        self.paths, self.channels = paths, channels
        self.shapes = [(h, w, channels) for h, w, _ in shapes]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        a = read_image(self.paths[i])
        return np.repeat(a, 3, axis=2) if a.shape[2] != self.channels else a


def load_arrays(path: Path, name: str) -> Dataset:
    """`.npz` with key `x` (images) and optional `y` (labels), or a `.npy` of images."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if "x" not in keys:
                    raise GankitError(f"{path}: has keys {keys}; expected 'x' (images) and optional 'y' (labels)")
                x, y = z["x"], (z["y"] if "y" in keys else None)
        else:
            x, y = np.load(path, allow_pickle=False), None
    except (ValueError, OSError, EOFError) as e:
        raise GankitError(f"{path}: cannot read array file ({e})") from None
    if x.ndim == 0 or x.size == 0:
        raise GankitError(f"{path}: the array is empty (shape {x.shape}); expected images (N, H, W) or (N, C, H, W)")
    if x.ndim == 2 and x.shape[1] == 2 and np.issubdtype(x.dtype, np.floating):
        return _points(x, y, path, name)
    x = _as_uint8_nchw(x, path)
    if y is not None:
        y = _labels(y, path, len(x))
    return Dataset(torch.from_numpy(x), y, name, classes=_class_names(y))


def load_idx_file(path: Path, name: str) -> Dataset:
    x = read_idx(path)
    if x.ndim != 3:
        raise GankitError(f"{path}: IDX images must have 3 dimensions (N, H, W), got shape {x.shape}")
    lp = labels_path_for(path)
    y = _labels(read_idx(lp), lp, len(x)) if lp else None
    return Dataset(torch.from_numpy(x[:, None].copy()), y, name, classes=_class_names(y))


def _as_uint8_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3, 4):
        x = x[..., :3].transpose(0, 3, 1, 2)  # NHWC -> NCHW, alpha dropped
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise GankitError(f"{path}: images have shape {x.shape}; expected (N, H, W), (N, C, H, W) or "
                          "(N, H, W, C) with C = 1 or 3")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0 and hi <= 1:
            return np.ascontiguousarray(np.round(x * 255).astype(np.uint8))
        raise GankitError(f"{path}: float images range over [{lo:g}, {hi:g}]; expected [0, 1] (or uint8 0-255)")
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi <= 255:
            return np.ascontiguousarray(x.astype(np.uint8))
        raise GankitError(f"{path}: integer images range over [{lo}, {hi}]; expected 0-255")
    raise GankitError(f"{path}: images have dtype {x.dtype}; expected uint8 or float in [0, 1]")


def _labels(y: np.ndarray, path: Path, n: int) -> torch.Tensor:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise GankitError(f"{path}: labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    if len(y) != n:
        raise GankitError(f"{path}: {n} images but {len(y)} labels")
    if len(y) and y.min() < 0:
        raise GankitError(f"{path}: labels must be >= 0, found {int(y.min())}")
    return torch.from_numpy(y.astype(np.int64))


def _class_names(y: torch.Tensor | None) -> list[str] | None:
    return None if y is None else [str(i) for i in range(int(y.max()) + 1)]


def _points(x: np.ndarray, y: np.ndarray | None, path: Path, name: str) -> Dataset:
    if not np.isfinite(x).all():
        raise GankitError(f"{path}: points contain NaN or infinite values")
    scale = float(np.abs(x).max()) * 1.1 or 1.0  # model space within [-0.91, 0.91]
    yt = _labels(y, path, len(x)) if y is not None else None
    return Dataset(torch.from_numpy(x.astype(np.float32)), yt, name, kind="points", scale=scale,
                   classes=_class_names(yt))
