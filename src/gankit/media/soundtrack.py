"""A source video's audio, carried into the video written from its frames.

Every gankit video output keeps its input's duration (translate, superres and denoise write the
frames at the input's rate; interpolate multiplies the rate by the frames it adds, or replaces
frames in place), so the audio needs no re-timing: its packets are copied unchanged, in step with
the frames, shifted only by the input video's own start time (the output's video starts at 0).
Where the output container does not take the audio's codec (pcm_mulaw or ADPCM in .mp4, FLAC in
.mov, ...), the audio is decoded and re-encoded to AAC, with a note; where even that fails (AAC
cannot take the channel layout, ...), the video is written without audio, with a note. A
corrupt stretch of audio ends the audio there, with a note, rather than losing the video.

The order of attempts (copy, else AAC, else none) is `VideoWriter`'s, which opens a fresh
container for each: a container refuses some codecs only when its header is written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

from gankit.errors import GankitError

AAC = "aac"  # FFmpeg's native AAC encoder: in every PyAV wheel, and taken by mp4, mov and mkv
Plan = Literal["copy", "aac"]


class Soundtrack:
    """The audio streams of the video `src`, added to an output container and muxed into it.

        track = Soundtrack(src)
        track.add_to(container, "copy")  # before the container's header is written
        track.feed(until=2.0)            # the audio of the output's first 2 s (after each frame)
        track.finish()                   # the rest; AAC encoders flushed
        track.close()
    """

    def __init__(self, src: str | Path):
        self.src = Path(src)
        try:
            self._in = av.open(str(self.src), mode="r")
        except av.error.FFmpegError as e:
            raise GankitError(f"{self.src}: not a readable video ({e.strerror})") from None
        self.streams = list(self._in.streams.audio)
        v = self._in.streams.video[0]
        # the output's first frame is at 0: the input's audio keeps its distance from the input's first frame
        self.t0 = v.start_time * v.time_base if v.start_time is not None else Fraction(0)
        self.note: str | None = None
        self._out = None
        self._tracks: dict[int, tuple[object, bool]] = {}  # input stream index -> (output stream, copied?)
        self._packets = None
        self._held = None
        self._done = False
        self._at: Fraction = Fraction(0)  # where the audio muxed so far ends, in output seconds

    def add_to(self, container, plan: Plan) -> None:
        """An output stream per input audio stream: copied where `plan` is "copy" and the container
        takes the codec, AAC otherwise. Raises ValueError or av.FFmpegError when it cannot."""
        self._out, self._tracks = container, {}
        recoded = []
        for s in self.streams:
            name = s.codec_context.name
            if plan == "copy" and name in container.supported_codecs:
                self._tracks[s.index] = (container.add_stream_from_template(s), True)
                continue
            rate = s.codec_context.sample_rate
            if rate not in (av.Codec(AAC, "w").audio_rates or ()):
                rate = 48000  # AAC takes the standard rates only; PyAV's encoder resamples to this
            out = container.add_stream(AAC, rate=rate, layout=s.codec_context.layout.name)
            self._tracks[s.index] = (out, False)
            recoded.append(name)
        if recoded:
            self.note = (f"{self.src}: its {', '.join(sorted(set(recoded)))} audio is re-encoded to AAC "
                         f"(the {container.format.name} container does not take it)")

    def dropped(self, why: str) -> None:
        """No output stream could be made: the video goes without audio; say so, once."""
        self._tracks = {}
        self.note = f"{self.src}: its audio track is dropped ({why}); the video is written without it"

    def feed(self, until: Fraction | float | None) -> None:
        """Mux the audio that starts before `until` seconds of the output (None: all that is left)."""
        while self._tracks and not self._done:
            p = self._held or self._next()
            self._held = None
            if p is None:
                return
            if until is not None and self._time(p) >= until:
                self._held = p  # the next frame's turn comes first
                return
            self._put(p)

    def finish(self) -> None:
        """The rest of the audio, and what the AAC encoders still hold."""
        self.feed(None)
        for index, (out, copied) in self._tracks.items():
            if copied:
                continue
            src = self._in.streams[index]
            try:
                for frame in src.codec_context.decode(None):  # what the decoder still holds
                    self._encode(out, frame)
            except av.error.FFmpegError:
                pass  # a damaged tail: the samples so far stand
            for packet in out.encode(None):
                self._out.mux(packet)

    def close(self) -> None:
        self._in.close()

    # -- one packet ----------------------------------------------------------------------------
    def _next(self):
        if self._packets is None:
            self._packets = self._in.demux(*[self._in.streams[i] for i in self._tracks])
        while True:
            try:
                p = next(self._packets)
            except StopIteration:
                self._done = True
                return None
            except av.error.FFmpegError as e:
                self._stop(e)
                return None
            if p.size and (p.pts is not None or p.dts is not None):  # not the demuxer's end-of-stream markers
                return p

    def _time(self, p) -> Fraction:
        """When the packet plays in the output, in seconds."""
        return (p.pts if p.pts is not None else p.dts) * p.time_base - self.t0

    def _put(self, p) -> None:
        out, copied = self._tracks[p.stream.index]
        self._at = self._time(p)
        if copied:
            shift = round(self.t0 / p.time_base)
            if p.pts is not None:
                p.pts -= shift
            if p.dts is not None:
                p.dts -= shift
            p.stream = out
            self._out.mux(p)
            return
        try:
            frames = p.decode()
        except av.error.FFmpegError as e:
            self._stop(e)
            return
        for frame in frames:
            self._encode(out, frame)

    def _encode(self, out, frame) -> None:
        if frame.pts is not None:
            frame.pts -= round(self.t0 / frame.time_base)
        for packet in out.encode(frame):
            self._out.mux(packet)

    def _stop(self, e: av.error.FFmpegError) -> None:
        self._done = True
        self.note = (f"{self.src}: its audio stops at {float(self._at):.2f} s: corrupt audio data "
                     f"({e.strerror}); the video is complete")
