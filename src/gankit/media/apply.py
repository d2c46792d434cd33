"""One image-to-image function over a user's input: an image, a folder of images, a video, or a
medical scan (a DICOM series or file, a NIfTI volume: `gankit.media.scans`).

`input_kind` says which an input is; `AtomicDir` is a folder of outputs that appears whole or not
at all; `apply_to_media` runs a function over each image or frame and writes the outputs the
same way, so a crash or an error never leaves a half file (or half folder) where the user asked
for the output.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Literal

from gankit import disk
from gankit.errors import DiskError, GankitError
from gankit.media.images import IMAGE_SUFFIXES, list_images, read_image, write_image
from gankit.media.medical import holds_medical
from gankit.media.scans import ScanOptions, apply_to_scan, as_image, is_scan_input
from gankit.media.video import VIDEO_OUT_FORMATS, VIDEO_SUFFIXES, VideoWriter, probe_video, read_frames

_ACCEPTED = (f"an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images, a video ({', '.join(VIDEO_SUFFIXES)}), "
             "or a scan (a DICOM file or series folder, a .nii/.nii.gz volume)")


def input_kind(path: str | Path) -> Literal["image", "folder", "video", "scan"]:
    """What an inference INPUT is, from its type and suffix: a folder holding DICOM files is a
    series (a scan), any other folder one of images."""
    path = Path(path)
    if is_scan_input(path):
        return "scan"
    if path.is_dir():
        if holds_medical(path) and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
            raise GankitError(f"{path}: holds scans in its subfolders, not one series; give one series folder "
                              "(DICOM files directly in it) or one NIfTI file at a time")
        return "folder"
    if not path.exists():
        raise GankitError(f"{path}: no such file or folder; expected {_ACCEPTED}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise GankitError(f"{path}: unknown suffix {suffix or '(none)'!r}; expected {_ACCEPTED}")


class AtomicDir:
    """A folder of outputs that appears whole or not at all.

        with AtomicDir(out) as tmp:   # tmp is OUT.partial/, created empty
            write_image(img, tmp / "a.png")

    On a clean exit OUT.partial/ is renamed to OUT; on an exception it is removed. An existing
    OUT that is not an empty folder is refused unless `overwrite`, in which case it is replaced
    as a whole (its old contents are deleted) when the new folder is complete.
    """

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.overwrite = overwrite

    def __enter__(self) -> Path:
        self._check()
        with disk.naming(self.path):
            if self.partial.exists():  # left by a run that was killed: ours to remove by its name
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
        return self.partial

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            if isinstance(exc, DiskError):  # name the file by where it was going: OUT.partial/ is gone
                raise DiskError(str(exc).replace(str(self.partial), str(self.path), 1)) from None
            return
        self._check()
        old = None
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            old = self.path.with_name(f".{self.path.name}.old-{secrets.token_hex(4)}")
            os.replace(self.path, old)
        os.replace(self.partial, self.path)
        if old is not None and old.is_dir():
            shutil.rmtree(old)
        elif old is not None:
            old.unlink()

    def _check(self) -> None:
        if self.overwrite or not self.path.exists():
            return
        if self.path.is_dir() and not any(self.path.iterdir()):
            return
        raise GankitError(f"{self.path}: already exists; choose a new output folder, "
                          "remove it, or ask to overwrite it")



def apply_to_media(fn, src: str | Path, out: str | Path, overwrite: bool = False, log=None,
                   scan: ScanOptions | None = None) -> dict:
    """Run `fn(img (H, W, C) uint8, where: str) -> (H', W', C') uint8` on an image, on every image
    of a folder (written under `out` with the same relative names), on every frame of a video
    (written at its frame rate, its audio kept; a line to `log` where the audio had to be
    re-encoded or left out, see `gankit.media.soundtrack`) or on every slice of a scan (windowed
    to 8-bit grey as `scan` says, written back as a scan or PNGs: `gankit.media.scans`). Checks
    the output path before any work; every output appears whole or not at all. Returns {kind, n,
    out, fps?}."""
    src, out = Path(src), Path(out)
    log = log or (lambda msg: None)
    kind = input_kind(src)
    if kind == "scan":
        return apply_to_scan(lambda x, where: fn(as_image(x), where), src, out, scan, overwrite, log)
    if out.resolve() == src.resolve():
        raise GankitError(f"--out {out}: the same path as the input; choose another output")
    if kind == "image" and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: an image input is written to an image ({', '.join(IMAGE_SUFFIXES)})")
    if kind == "video" and out.suffix.lower() not in VIDEO_OUT_FORMATS:
        raise GankitError(f"--out {out}: a video is written to {', '.join(VIDEO_OUT_FORMATS)}")
    if kind != "folder" and out.exists() and not overwrite:
        raise GankitError(f"--out {out}: already exists; choose another path or pass --overwrite")
    if kind == "image":
        write_image(fn(read_image(src), str(src)), out)
        return {"kind": kind, "n": 1, "out": str(out)}
    if kind == "folder":
        files = list_images(src)
        with AtomicDir(out, overwrite=overwrite) as tmp:
            for f in files:
                dst = tmp / f.relative_to(src)
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_image(fn(read_image(f), str(f)), dst)
        return {"kind": kind, "n": len(files), "out": str(out)}
    info = probe_video(src)
    n = 0
    # the same frame count at the same rate: the same duration, so the audio is copied as it is
    with VideoWriter(out, info.fps, audio_from=src if info.has_audio else None) as w:
        for frame in read_frames(src):
            w.write(fn(frame, f"{src} frames"))
            n += 1
    for line in w.notes:
        log(line)
    return {"kind": kind, "n": n, "out": str(out), "fps": float(info.fps)}
