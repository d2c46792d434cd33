"""A user's videos: probed, decoded frame by frame, and written as H.264 atomically.

Video goes through PyAV, whose wheels bundle FFmpeg with libx264, so no system install is needed.
Frames are uint8 (H, W, 3) RGB numpy arrays. Video is written as H.264 in yuv420p (what every
player plays) with BT.709 colour tags; yuv420p stores chroma at half resolution, so H.264 needs
an even width and height: odd-sized frames are padded by one replicated row/column
(`VideoWriter.note` says so). `VideoWriter(..., audio_from=SRC)` carries SRC's audio into the
output (`gankit.media.soundtrack`: copied unchanged, or re-encoded to AAC where the container
refuses its codec). A write appears at its path only once complete.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gankit import disk
from gankit.errors import GankitError
from gankit.media.images import as_hwc
from gankit.media.soundtrack import Soundtrack
from gankit.threads import cpu_budget

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")  # read; FFmpeg demuxes them all
VIDEO_OUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # containers that take H.264



@dataclass(frozen=True)
class VideoInfo:
    fps: Fraction  # exact, e.g. Fraction(30000, 1001) for "29.97"; float(fps) for arithmetic
    n_frames: int | None  # from the container's index; None where it has none (most .mkv/.webm)
    size: tuple[int, int]  # (W, H) as displayed, i.e. after the file's rotation is applied
    has_audio: bool  # an output written with VideoWriter(..., audio_from=this video) keeps it


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


def count_frames(path: str | Path) -> int:
    """A video's frame count without decoding it: the container's index where it has one, else
    its video packets counted (one frame each in the codecs gankit reads), for size estimates."""
    path = Path(path)
    with _open_video(path) as c:
        s = c.streams.video[0]
        if s.frames:
            return s.frames
        try:
            return sum(1 for p in c.demux(s) if p.size)
        except av.error.FFmpegError as e:
            raise GankitError(f"{path}: corrupt or truncated video data ({e.strerror})") from None


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

    `audio_from`: a video whose audio streams go into the output, muxed in step with the frames
    (the frames written must span that video's duration, as every gankit video command's do).
    `notes` has the padding note and one line where the audio could not be copied unchanged.
    """

    def __init__(self, path: str | Path, fps: Fraction | float, crf: int = 18,
                 audio_from: str | Path | None = None):
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
        self._audio_from = audio_from
        self._audio: Soundtrack | None = None

    @property
    def notes(self) -> list[str]:
        """The lines to show the user: frames padded; audio re-encoded, dropped or cut short."""
        return [n for n in (self.note, self._audio and self._audio.note) if n]

    def __enter__(self) -> VideoWriter:
        with disk.naming(self.path):
            self._tmp = _reserve_temp(self.path)
        return self

    def write(self, frame: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("VideoWriter.write outside its `with` block")
        a = as_hwc(frame)
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
            if self._audio is not None:  # the audio up to this frame's end, so the file stays interleaved
                self._audio.feed(self.n_frames / self.rate)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.n_frames == 0:
                    raise ValueError(f"{self.path}: no frames were written")
                with disk.naming(self.path):
                    for packet in self._stream.encode():  # flush the frames x264 still holds
                        self._container.mux(packet)
                    if self._audio is not None:
                        self._audio.finish()
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
            if self._audio is not None:
                self._audio.close()
            if self._tmp is not None:
                disk.remove(self._tmp)

    def _start(self, h: int, w: int) -> None:
        self._size = (h, w)
        if h % 2 or w % 2:
            self.note = (f"{self.path}: frames padded from {w}x{h} to {w + w % 2}x{h + h % 2} "
                         "(H.264 in yuv420p needs an even width and height)")
        if self._audio_from is None:
            self._open(h, w)
            return
        self._audio = Soundtrack(self._audio_from)
        # A container refuses some codecs only when it writes its header, so each attempt gets a
        # fresh one: the audio copied, else re-encoded to AAC, else left out.
        for plan in ("copy", "aac"):
            self._open(h, w)
            try:
                self._audio.add_to(self._container, plan)
                with disk.naming(self.path):
                    self._container.start_encoding()  # the header: the container's last word on the codecs
                return
            except OSError:  # the disk, not the codec (PyAV's I/O errors are OSErrors too)
                raise
            except (ValueError, av.error.FFmpegError) as e:
                why = " ".join(str(getattr(e, "strerror", None) or e).split())
                self._discard()
        self._audio.dropped(f"neither it nor AAC goes into {self.format}: {why}")
        self._open(h, w)

    def _discard(self) -> None:
        """Close a container whose header was refused; its temporary file is reused."""
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass  # nothing of it is kept
        self._container = None

    def _open(self, h: int, w: int) -> None:
        """The output container (on the temporary file) and its H.264 stream."""
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
