"""A user's media for inference commands: one image, a folder of images, or a video.

Reads return uint8 (H, W, C) numpy arrays; `conform` turns one into the (C, H, W) a run expects.
Every write is atomic: the output is written under a temporary name beside its target and moved
into place with `os.replace` only once complete, so a crash or an error never leaves a half
file (or half folder) where the user asked for the output.

Images go through PIL. Video goes through PyAV, whose wheels bundle FFmpeg with libx264, so no
system install is needed. Video is written as H.264 in yuv420p (what every player plays) with
BT.709 colour tags; yuv420p stores chroma at half resolution, so H.264 needs an even width and
height: odd-sized frames are padded by one replicated row/column (`VideoWriter.note` says so).
Audio is never carried over: `probe_video(...).has_audio` lets the caller say it was dropped.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gankit import disk
from gankit.data.dataset import resize_uint8
from gankit.data.files import IMAGE_SUFFIXES
from gankit.errors import DiskError, GankitError
from gankit.threads import cpu_budget

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")  # read; FFmpeg demuxes them all
VIDEO_OUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # containers that take H.264
_IMAGE_OUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}
_ACCEPTED = (f"an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images, "
             f"or a video ({', '.join(VIDEO_SUFFIXES)})")


def input_kind(path: str | Path) -> Literal["image", "folder", "video"]:
    """What an inference INPUT is, from its type and suffix."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise GankitError(f"{path}: no such file or folder; expected {_ACCEPTED}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise GankitError(f"{path}: unknown suffix {suffix or '(none)'!r}; expected {_ACCEPTED}")


# ---------------------------------------------------------------------------------------------
# Images


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
    a = _hwc(img)
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


# ---------------------------------------------------------------------------------------------
# Video


@dataclass(frozen=True)
class VideoInfo:
    fps: Fraction  # exact, e.g. Fraction(30000, 1001) for "29.97"; float(fps) for arithmetic
    n_frames: int | None  # from the container's index; None where it has none (most .mkv/.webm)
    size: tuple[int, int]  # (W, H) as displayed, i.e. after the file's rotation is applied
    has_audio: bool  # audio is not carried over to outputs: the caller should say so


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, frame count, size and audio of a video. Only the first frame is decoded: it
    tells the displayed size and shows the stream is decodable before any work starts."""
    path = Path(path)
    with _open_video(path) as c:
        s = c.streams.video[0]
        rate = _stream_rate(s, path)
        first = next(_decode(c, s, path), None)
        if first is None:
            raise GankitError(f"{path}: no video frames could be decoded; the file is empty or damaged")
        h, w = first.shape[:2]
        return VideoInfo(fps=rate, n_frames=s.frames or None, size=(w, h),
                         has_audio=len(c.streams.audio) > 0)


def read_frames(path: str | Path) -> Iterator[np.ndarray]:
    """uint8 (H, W, 3) RGB frames, decoded one at a time (the video is never held in memory).
    Each frame is turned upright by the rotation the file asks for, as players do."""
    path = Path(path)
    with _open_video(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"  # frame + slice threads: decoding is the slow part of a read
        s.codec_context.thread_count = cpu_budget()
        n = 0
        for n, rgb in enumerate(_decode(c, s, path), 1):
            yield rgb
    if n == 0:
        raise GankitError(f"{path}: no video frames could be decoded; the file is empty or damaged")


def _decode(c, s, path: Path) -> Iterator[np.ndarray]:
    n = 0
    try:
        for frame in c.decode(s):
            # to_ndarray honours the frame's colour tags (BT.601/709, range) in the conversion
            rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3)
            quarter_turns = round(frame.rotation / 90) % 4  # display matrix; PyAV >= 15
            if quarter_turns:  # `rotation` is counter-clockwise, as np.rot90 turns
                rgb = np.ascontiguousarray(np.rot90(rgb, quarter_turns))
            n += 1
            yield rgb
    except av.error.FFmpegError as e:
        raise GankitError(f"{path}: corrupt or truncated video data after frame {n} ({e.strerror})") from None


class VideoWriter:
    """H.264 video written frame by frame, atomically.

        with VideoWriter(out, fps=info.fps) as w:
            for frame in frames:
                w.write(frame)  # uint8 (H, W, 1) or (H, W, 3), one size throughout

    The file appears at `path` only when the `with` block exits cleanly; if it raises, the
    temporary file is removed and `path` is left as it was. `crf` is x264's constant rate factor
    (0 lossless ... 51 worst; 18 is visually near-lossless, 23 is x264's default). After the
    first frame, `note` says whether frames were padded to even sizes (None otherwise).
    """

    def __init__(self, path: str | Path, fps: Fraction | float, crf: int = 18):
        self.path = Path(path)
        self.format = VIDEO_OUT_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise GankitError(f"{self.path}: cannot write video as {self.path.suffix or '(no suffix)'!r}; "
                              f"use one of {', '.join(VIDEO_OUT_FORMATS)}")
        if not 0 <= crf <= 51:
            raise GankitError(f"crf {crf}: out of range; x264 accepts 0 (lossless) to 51")
        self.rate = _exact_rate(fps)
        self.crf = crf
        self.note: str | None = None
        self.n_frames = 0
        self._tmp: Path | None = None
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (H, W) of the frames given to write()

    def __enter__(self) -> VideoWriter:
        with disk.naming(self.path):
            self._tmp = _reserve_temp(self.path)
        return self

    def write(self, frame: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("VideoWriter.write outside its `with` block")
        a = _hwc(frame)
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        if self._stream is None:
            self._start(a.shape[0], a.shape[1])
        if a.shape[:2] != self._size:
            raise ValueError(f"frame {self.n_frames} is {a.shape[1]}x{a.shape[0]}, "
                             f"earlier frames were {self._size[1]}x{self._size[0]}")
        pad_h, pad_w = a.shape[0] % 2, a.shape[1] % 2
        if pad_h or pad_w:
            a = np.pad(a, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        f = av.VideoFrame.from_ndarray(a, format="rgb24")
        # RGB -> BT.709 limited-range YUV, matching the tags set in _start
        f = f.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        with disk.naming(self.path):  # a full disk: one line naming the video, not its temporary file
            for packet in self._stream.encode(f):
                self._container.mux(packet)
        self.n_frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.n_frames == 0:
                    raise ValueError(f"{self.path}: no frames were written")
                with disk.naming(self.path):
                    for packet in self._stream.encode():  # flush the frames x264 still holds
                        self._container.mux(packet)
                    self._container.close()  # writes the index (mp4's moov)
                    self._container = None
                    os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._container is not None:
                try:
                    self._container.close()
                except av.error.FFmpegError:
                    pass  # already failing: the first exception is the one to report
            if self._tmp is not None:
                disk.remove(self._tmp)

    def _start(self, h: int, w: int) -> None:
        self._size = (h, w)
        if h % 2 or w % 2:
            self.note = (f"{self.path}: frames padded from {w}x{h} to {w + w % 2}x{h + h % 2} "
                         "(H.264 in yuv420p needs an even width and height)")
        # faststart: the index goes before the frames, so players can start before the end arrives
        options = {"movflags": "+faststart"} if self.format in ("mp4", "mov") else {}
        with disk.naming(self.path):
            self._container = av.open(str(self._tmp), mode="w", format=self.format, options=options)
        s = self._container.add_stream("libx264", rate=self.rate)
        s.width, s.height = w + w % 2, h + h % 2
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(self.crf), "preset": "medium"}
        cc = s.codec_context
        cc.thread_count = cpu_budget()
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # AVCOL_*_BT709: sRGB's primaries
        cc.color_range = 1  # AVCOL_RANGE_MPEG (16-235), what players expect of H.264
        self._stream = s


def _exact_rate(fps: Fraction | float) -> Fraction:
    """A frame rate as an exact fraction. A float near an NTSC rate (23.976, 29.97, 59.94) means
    N*1000/1001, as it does in every file whose rate prints that way."""
    if not isinstance(fps, Fraction):
        fps = float(fps)
        if not math.isfinite(fps):
            raise GankitError(f"fps {fps}: not a frame rate; expected a positive number such as 25 or 29.97")
        ntsc = round(fps * 1.001)  # 29.97 -> 30
        if fps != round(fps) and abs(fps - ntsc / 1.001) < 0.005:
            fps = Fraction(ntsc * 1000, 1001)
        else:
            fps = Fraction(fps).limit_denominator(1001)
    if not 0 < fps <= 1000:
        raise GankitError(f"fps {float(fps):g}: not a usable frame rate; expected more than 0, at most 1000")
    return fps


def _open_video(path: Path):
    """An input container with at least one video stream, or a one-line GankitError."""
    if not path.is_file():
        raise GankitError(f"{path}: no such video file")
    try:
        c = av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise GankitError(f"{path}: not a readable video ({e.strerror}); "
                          "the file is damaged or not a video") from None
    if not c.streams.video:
        kinds = sorted({st.type for st in c.streams})
        c.close()
        raise GankitError(f"{path}: has no video stream" + (f" (only {', '.join(kinds)})" if kinds else
                                                              "; the file is damaged or not a video"))
    return c


def _stream_rate(s, path: Path) -> Fraction:
    """The nominal frame rate (r_frame_rate, e.g. 30000/1001) when the average agrees with it to
    0.1%; otherwise (variable frame rate, as phones record) the average, which keeps the
    duration when the frames are written back at a constant rate."""
    nominal = s.guessed_rate or s.base_rate
    average = s.average_rate
    if nominal and average and abs(average / nominal - 1) < 1e-3:
        return Fraction(nominal)
    rate = average or nominal
    if not rate:
        raise GankitError(f"{path}: the video has no frame rate in its headers; the file is damaged")
    return Fraction(rate)


# ---------------------------------------------------------------------------------------------
# Fitting an input to a run


def conform(img: np.ndarray, shape: tuple[int, int, int], strict: bool,
            where: str) -> tuple[np.ndarray, str | None]:
    """Turn uint8 (H, W, C) `img` into uint8 (C, H, W) = `shape`, the run's image shape:
    grey <-> RGB (ITU-R 601 luma) and an antialiased bilinear resize (aspect ratio not kept).
    Returns the image and a one-line note naming `where` and what was changed (None when
    nothing was). With `strict`, any change is refused with a GankitError instead.
    Sizes are written WxH in messages."""
    a = _hwc(img)
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


# ---------------------------------------------------------------------------------------------
# Helpers


def _hwc(img: np.ndarray) -> np.ndarray:
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


def _reserve_temp(path: Path) -> Path:
    """A new, empty, hidden file beside `path` (same folder, so os.replace is atomic). It is
    created with mode 0o666 less the umask, as `path` itself would be (mkstemp's 0o600 would
    leave outputs readable by their owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


# ---------------------------------------------------------------------------------------------
# One image-to-image function over an image, a folder of images or a video


def apply_to_media(fn, src: str | Path, out: str | Path, overwrite: bool = False, log=None,
                   what: str = "translated") -> dict:
    """Run `fn(img (H, W, C) uint8, where: str) -> (H', W', C') uint8` on an image, on every image
    of a folder (written under `out` with the same relative names) or on every frame of a video
    (written at its frame rate; its audio dropped with a line to `log`). Checks the output path
    before any work; every output appears whole or not at all. Returns {kind, n, out, fps?}."""
    src, out = Path(src), Path(out)
    log = log or (lambda msg: None)
    kind = input_kind(src)
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
    if info.has_audio:
        log(f"{src}: its audio track is dropped (gankit writes the {what} frames only)")
    n = 0
    with VideoWriter(out, info.fps) as w:
        for frame in read_frames(src):
            w.write(fn(frame, f"{src} frames"))
            n += 1
    if w.note:
        log(w.note)
    return {"kind": kind, "n": n, "out": str(out), "fps": float(info.fps)}
