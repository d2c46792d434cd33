"""A user's images: read, written atomically, listed, and fitted to a run's image shape.

Reads return uint8 (H, W, C) numpy arrays, C = 1 or 3; `conform` turns one into the (C, H, W) a
run expects. Images go through PIL. `resize_uint8`, the antialiased resize every image in gankit
goes through (datasets, metrics and inference inputs alike), lives here so that `gankit.data`
builds on this module and never the other way round.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from gankit import disk
from gankit.errors import GankitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")  # what gankit reads as an image
_IMAGE_OUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}


def read_image(path: str | Path) -> np.ndarray:
    """uint8 (H, W, 1) or (H, W, 3): alpha dropped, palettes expanded, 16-bit grey scaled to
    8 bits, and the EXIF orientation applied (a phone photo comes out upright)."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now: truncated files fail here, not later
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16") or im.mode == "I":
                # 16-bit grey (PNG): convert("L") would clip at 255, so scale 0..65535 -> 0..255
                a = np.asarray(im.convert("I"), dtype=np.float64)
                a = np.clip(np.round(a / 257), 0, 255).astype(np.uint8)
            elif im.mode in ("1", "L", "LA", "La"):
                a = np.asarray(im.convert("L"))
            else:  # RGB, RGBA, P, PA, CMYK, YCbCr, ...
                a = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError) as e:
        raise GankitError(f"{path}: corrupt, truncated or unsupported image ({e})") from None
    return np.ascontiguousarray(a[:, :, None] if a.ndim == 2 else a)


def write_image(img: np.ndarray, path: str | Path) -> Path:
    """Write uint8 (H, W), (H, W, 1) or (H, W, 3) atomically; the format follows the suffix
    (.png lossless, .jpg/.jpeg at quality 95 with full-resolution chroma, .bmp)."""
    path = Path(path)
    fmt = _IMAGE_OUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GankitError(f"{path}: cannot write images as {path.suffix or '(no suffix)'!r}; "
                          f"use one of {', '.join(_IMAGE_OUT_FORMATS)}")
    a = as_hwc(img)
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    with disk.atomic(path) as tmp:
        im.save(tmp, format=fmt, **options)
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Images under `folder`, recursively and sorted; hidden files and folders are skipped."""
    folder = Path(folder)
    found = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not found:
        raise GankitError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} recursively)")
    return found


def resize_uint8(x: torch.Tensor, size: int | tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 (N, C, H, W), in chunks to bound memory."""
    size = (size, size) if isinstance(size, int) else size
    out = []
    for part in x.split(chunk):
        r = F.interpolate(part.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(r.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)



def conform(img: np.ndarray, shape: tuple[int, int, int], strict: bool,
            where: str) -> tuple[np.ndarray, str | None]:
    """Turn uint8 (H, W, C) `img` into uint8 (C, H, W) = `shape`, the run's image shape:
    grey <-> RGB (ITU-R 601 luma) and an antialiased bilinear resize (aspect ratio not kept).
    Returns the image and a one-line note naming `where` and what was changed (None when
    nothing was). With `strict`, any change is refused with a GankitError instead.
    Sizes are written WxH in messages."""
    a = as_hwc(img)
    c, h, w = shape
    if c not in (1, 3):
        raise ValueError(f"shape {shape}: channels must be 1 or 3")
    h0, w0, c0 = a.shape
    if (c0, h0, w0) == (c, h, w):
        return np.ascontiguousarray(a.transpose(2, 0, 1)), None
    have, want = f"{w0}x{h0} {_channels(c0)}", f"{w}x{h} {_channels(c)}"
    if strict:
        raise GankitError(f"{where}: is {have} but the run expects {want} images; "
                          "--strict refuses to convert it (drop --strict to resize and convert)")
    x = torch.from_numpy(np.array(a)).permute(2, 0, 1)  # (C0, H0, W0); a copy: the input may be read-only
    changes = []
    if c0 == 3 and c == 1:
        # ITU-R 601 luma, as PIL's convert("L"): Y = 0.299 R + 0.587 G + 0.114 B
        y = (x.float() * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
        x = y.round_().clamp_(0, 255).to(torch.uint8)  # (1, H0, W0)
        changes.append("converted RGB to grey")
    if (h0, w0) != (h, w):
        x = resize_uint8(x[None], (h, w))[0]  # (C, H, W)
        kept = abs(w0 * h - h0 * w) <= 0.01 * h0 * w  # w0/h0 within 1% of w/h
        changes.append(f"resized {w0}x{h0} to {w}x{h}" + ("" if kept else " (aspect ratio not kept)"))
    if c0 == 1 and c == 3:
        x = x.expand(3, -1, -1)
        changes.append("converted grey to RGB")
    if (h0, w0) == (h, w):  # only the channels changed (fully convolutional runs keep any size)
        want = _channels(c)
    return np.ascontiguousarray(x.numpy()), f"{where}: {', '.join(changes)} (the run expects {want})"


class NoteOnce:
    """Say a conversion (`conform`'s note) once, on the first input it applies to, and at the
    end how many inputs it applied to."""

    def __init__(self, log):
        self.log, self.first, self.count = log, None, 0

    def add(self, note: str | None) -> None:
        if note is None:
            return
        self.count += 1
        if self.first is None:
            self.first = note
            self.log(note)

    def close(self, what: str) -> None:
        if self.count > 1:
            self.log(f"converted {self.count} {what} in all, as above")


def as_hwc(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, C) with C = 1 or 3 as (H, W, C); anything else is our bug."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"image dtype {a.dtype}: expected uint8")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image shape {a.shape}: expected (H, W), (H, W, 1) or (H, W, 3)")
    return a


def _channels(c: int) -> str:
    return "grey" if c == 1 else "RGB"
