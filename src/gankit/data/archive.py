"""`open_images(path)`: random access to the images of a zip or a folder, without decoding them all.

A zip is read as stylegan2-ada-pytorch's `dataset_tool.py` writes it: images anywhere in the
archive, sorted by name, and an optional ``dataset.json`` of labels,
``{"labels": [["00000/img00000000.png", 3], ...] | null}``. A zip without ``dataset.json`` is
unlabelled. `gankit dataset` writes the same layout plus a ``"gankit"`` key (version, count,
resolution, channels, classes, source, transform, sha256, skipped, converted); class names and
the image shape are read from it when present, and `verify` recomputes its hash. A folder
follows gankit's folder rules (`gankit.data.files`): recursive, first subfolder = class.

Readers are picklable: the zip is opened lazily in each process that reads it (DataLoader
workers), never shared across a fork.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from gankit.data.files import class_parts, folder_labels, list_images, name_list, read_image
from gankit.errors import GankitError
from gankit.media.images import IMAGE_SUFFIXES

LABELS = "dataset.json"


class ImageArchive:
    """The images of a zip or folder by index: `len`, `shape` (C, H, W, of the first image or the
    recorded one), `labels` (int64 array or None), `classes`, `names`, `read(i)` -> uint8
    (C, H, W) tensor, `info` (the zip's "gankit" record, {} when none)."""

    def __init__(self, path: str | Path, files: list[Path] | None = None):
        """`files`: these images under the folder `path`, in this order, unlabelled (one domain of
        a paired set) instead of every image under it."""
        self.path = Path(path).expanduser()
        self.info: dict = {}
        self.skipped = 0  # non-image entries passed over
        if files is not None:
            self.kind, self.classes, self.labels = "folder", None, None
            self.names = [p.relative_to(self.path).as_posix() for p in files]
        elif self.path.is_dir():
            self.kind = "folder"
            files, self.skipped = list_images(self.path)
            self.names = [p.relative_to(self.path).as_posix() for p in files]
            self.classes, self.labels = folder_labels(class_parts(self.path, files))
        elif self.path.is_file() and self.path.suffix.lower() == ".zip":
            self.kind = "zip"
            self._scan_zip()
        else:
            raise GankitError(f"{self.path}: not a zip or a folder of images")
        self._zip: zipfile.ZipFile | None = None
        self._pid = None
        self._shape: tuple[int, int, int] | None = None
        if self.info.get("resolution") and self.info.get("channels"):
            r = int(self.info["resolution"])
            self._shape = (int(self.info["channels"]), r, r)

    def _scan_zip(self) -> None:
        try:
            with zipfile.ZipFile(self.path) as z:
                entries = [i.filename for i in z.infolist() if not i.is_dir()]
                meta = json.loads(z.read(LABELS)) if LABELS in entries else None
        except zipfile.BadZipFile as e:
            raise GankitError(f"{self.path}: not a readable zip ({e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GankitError(f"{self.path}: {LABELS} is not JSON ({e})") from None
        self.names = sorted(n for n in entries if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        self.skipped = len(entries) - len(self.names) - (meta is not None)
        if not self.names:
            raise GankitError(f"{self.path}: not an image dataset: no {', '.join(IMAGE_SUFFIXES)} entries "
                              f"among its {len(entries)} files")
        self.classes, self.labels = None, None
        if meta is None:  # no dataset.json: labelled as a folder is, by class subfolders (as gankit dataset reads it)
            parts = [tuple(n.split("/")) for n in self.names]
            if len({p[0] for p in parts}) == 1 and all(len(p) > 1 for p in parts):
                parts = [p[1:] for p in parts]  # a zipped folder: its one top folder is not a class
            if any(len(p) > 1 for p in parts) and any(len(p) == 1 for p in parts):
                loose = next(n for n, p in zip(self.names, parts) if len(p) == 1)
                raise GankitError(f"{self.path}: {loose} sits at the top while other images sit in class "
                                  "subfolders; move it into one, or add a dataset.json")
            self.classes, self.labels = folder_labels(parts)
            return
        if not isinstance(meta, dict):
            raise GankitError(f"{self.path}: {LABELS} must be an object with key 'labels'")
        self.info = meta.get("gankit") or {}
        self.labels = _zip_labels(meta.get("labels"), self.names, self.path)
        if self.labels is not None:
            named = self.info.get("classes")
            self.classes = list(map(str, named)) if named else [str(i) for i in range(int(self.labels.max()) + 1)]
            if len(self.classes) <= int(self.labels.max()):
                raise GankitError(f"{self.path}: {LABELS} labels go up to {int(self.labels.max())} but "
                                  f"'gankit.classes' names {len(self.classes)} classes")

    # -- pickling: the open zip stays behind, each process opens its own ----------------------------
    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The recorded shape, else the first readable image's (a damaged first file is the
        reading path's to skip or refuse, not a reason to fail here)."""
        if self._shape is None:
            for i in range(len(self)):
                try:
                    self._shape = tuple(self.read(i).shape)
                    break
                except GankitError:
                    if i == len(self) - 1 or i >= 100:
                        raise
        return self._shape

    def where(self, i: int) -> str:
        """Entry i as messages name it: 'faces.zip:00000/img00000042.png' or the file's path."""
        return f"{self.path}:{self.names[i]}" if self.kind == "zip" else str(self.path / self.names[i])

    def read(self, i: int) -> torch.Tensor:
        """Image i decoded: uint8 (C, H, W), C = 1 (grey) or 3."""
        if self.kind == "folder":
            a = read_image(self.path / self.names[i])
        else:
            with self._open().open(self.names[i]) as f:
                a = read_image(io.BytesIO(f.read()), self.where(i))
        return torch.from_numpy(a).permute(2, 0, 1)

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def open_images(path: str | Path) -> ImageArchive:
    return ImageArchive(path)


def _zip_labels(labels, names: list[str], path: Path) -> np.ndarray | None:
    """dataset.json's [[name, label], ...] in the images' order; every image named exactly once."""
    if labels is None:
        return None
    if not isinstance(labels, list) or not all(isinstance(e, list) and len(e) == 2 for e in labels):
        raise GankitError(f"{path}: {LABELS} 'labels' must be [[file name, integer class], ...] or null")
    table = {}
    for name, label in labels:
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise GankitError(f"{path}: {LABELS} label of {name!r} is {label!r}; expected an integer class >= 0")
        table[name] = label
    known = set(names)
    unknown = [n for n in table if n not in known]
    if unknown:
        raise GankitError(f"{path}: {LABELS} labels {len(unknown)} files not in the zip ({name_list(unknown)}); "
                          "every label must name an image entry")
    missing = [n for n in names if n not in table]
    if missing:
        raise GankitError(f"{path}: {LABELS} has no label for {len(missing)} of {len(names)} images "
                          f"({name_list(missing)}); label every image, or set 'labels' to null")
    return np.array([table[n] for n in names], dtype=np.int64)


def hash_zip(path: str | Path) -> str:
    """The content hash `gankit dataset` records (`gankit.data.tool.content_hash`: sha256 over the
    image entries in name order, each as its UTF-8 name, a zero byte, its bytes) of a zip as it is
    on disk, one entry in memory at a time. Independent of compression and of dataset.json, so the
    record can live inside the archive it describes."""
    from gankit.data.tool import content_hash

    with zipfile.ZipFile(path) as z:
        names = sorted(i.filename for i in z.infolist()
                       if not i.is_dir() and Path(i.filename).suffix.lower() in IMAGE_SUFFIXES)
        return content_hash((n, z.read(n)) for n in names)


def verify(path: str | Path) -> bool | None:
    """Whether a zip's images hash to its recorded `gankit.sha256`; None when it records none."""
    recorded = ImageArchive(path).info.get("sha256")
    return None if not recorded else hash_zip(path) == recorded
