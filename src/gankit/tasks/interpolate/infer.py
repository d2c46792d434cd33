"""Using a frame-interpolation run on a user's video.

    interpolate_video(run, "in.mp4", "out.mp4", factor=2)          # double the frame rate
    interpolate_video(run, "in.mp4", "out.mp4", fill=[10, 11, 40]) # replace damaged frames

`factor` 2, 4 or 8: between every two frames, factor - 1 new ones, by repeated halving (the
middle of (a, b), then the middles of the halves, ...); the output's frame rate is factor x the
input's, so the duration is kept. `fill`: each listed frame (0-based) is replaced by a
prediction from its nearest good neighbours, by the same halving over the damaged run; a run of
damaged frames whose length is not 2^k - 1 places some predictions off the exact middle (the
model was trained on equal spacing), which is an approximation, stated here. The network is
fully convolutional, so frames keep their own size; a frame whose channel count differs from the
run's is converted (with one line), or refused with `strict`. The video's audio is kept (`gankit.media.soundtrack`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit.data import from_model
from gankit.errors import GankitError, warn
from gankit.media.apply import input_kind
from gankit.media.images import NoteOnce, conform
from gankit.media.video import VIDEO_OUT_FORMATS, VideoWriter, probe_video, read_frames
from gankit.tasks.interpolate.guide import model_inputs
from gankit.tasks.interpolate.phases import predict

FACTORS = (2, 4, 8)


class _Model:
    """The run's G on uint8 (H, W, C) frames; a channel conversion is said once."""

    def __init__(self, run, strict: bool, log):
        run.need("interpolate", "frame interpolation")
        self.run, self.strict, self.notes = run, strict, NoteOnce(log)
        self.c = run.data_meta["shape"][0]

    def tensor(self, frame: np.ndarray, where: str) -> torch.Tensor:
        h, w = frame.shape[:2]
        x, note = conform(frame, (self.c, h, w), self.strict, where)
        self.notes.add(note)
        return torch.from_numpy(np.array(x))

    @torch.no_grad()
    def middle(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """uint8 (C, H, W) frames -> the uint8 frame between them."""
        icfg = self.run.config.interpolate
        prev, next_, warps = model_inputs(a[None], b[None], icfg.flow, self.run.device)
        return from_model(predict(self.run.nets["G"], prev, next_, icfg.residual, warps), "image")[0].cpu()

    def between(self, a: torch.Tensor, b: torch.Tensor, k: int) -> list[torch.Tensor]:
        """k frames between a and b by repeated halving (exact middles when k = 2^j - 1)."""
        if k <= 0:
            return []
        m = self.middle(a, b)
        left = (k - 1) // 2
        return self.between(a, m, left) + [m] + self.between(m, b, k - 1 - left)


def middle_frame(run, prev: np.ndarray, next_: np.ndarray, strict: bool = False, log=None) -> np.ndarray:
    """The frame between two uint8 (H, W, C) frames of one video, as uint8 (H, W, C); frames
    whose channels differ from the run's are converted (said through `log`), or refused with `strict`."""
    if prev.shape[:2] != next_.shape[:2]:
        raise GankitError(f"the frames differ in size ({prev.shape[1]}x{prev.shape[0]} and "
                          f"{next_.shape[1]}x{next_.shape[0]}); give two frames of one video")
    model = _Model(run, strict, log or (lambda msg: None))
    return _hwc(model.middle(model.tensor(prev, "previous frame"), model.tensor(next_, "next frame")))


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()


def interpolate_video(run, src: str | Path, out: str | Path, factor: int | None = None, fill: list[int] | None = None,
                      strict: bool = False, overwrite: bool = False, log: Callable[[str], None] = warn) -> dict:
    src, out = Path(src), Path(out)
    if (factor is None) == (fill is None):
        raise GankitError("give either --factor N (raise the frame rate) or --fill with --frames (replace frames)")
    if factor is not None and factor not in FACTORS:
        raise GankitError(f"--factor {factor}; choose one of: {', '.join(map(str, FACTORS))}")
    model = _Model(run, strict, log)
    if input_kind(src) != "video":
        raise GankitError(f"{src}: frame interpolation needs a video (.mp4, .mov, .mkv, .avi, .webm)")
    if out.suffix.lower() not in VIDEO_OUT_FORMATS:
        raise GankitError(f"--out {out}: a video is written to {', '.join(VIDEO_OUT_FORMATS)}")
    if out.resolve() == src.resolve() or (out.exists() and not overwrite):
        raise GankitError(f"--out {out}: already exists (or is the input); choose another path or pass --overwrite")
    info = probe_video(src)
    if fill is not None:
        n = info.n_frames if info.n_frames is not None else sum(1 for _ in read_frames(src))
        bad = sorted(set(fill))
        outside = [i for i in bad if not 0 <= i < n]
        if outside:
            raise GankitError(f"--frames {','.join(map(str, outside))}: outside the video's frames 0..{n - 1}")
        if 0 in bad or n - 1 in bad:
            raise GankitError(f"--frames: the first and last frames ({0} and {n - 1}) have only one neighbour; "
                              "frames to fill must lie between two good ones")
    frames = (model.tensor(f, f"{src} frames") for f in read_frames(src))
    written = 0
    # both modes keep the duration (factor x the frames at factor x the rate, or the same frames),
    # so the audio is copied as it is
    with VideoWriter(out, info.fps * (factor or 1), audio_from=src if info.has_audio else None) as w:
        if factor is not None:
            prev = next(frames, None)
            if prev is None:
                raise GankitError(f"{src}: no frames")
            w.write(_hwc(prev))
            written = 1
            for cur in frames:
                for m in model.between(prev, cur, factor - 1):
                    w.write(_hwc(m))
                w.write(_hwc(cur))
                written += factor
                prev = cur
        else:
            damaged, good, held = set(fill), None, 0
            for i, cur in enumerate(frames):
                if i in damaged:
                    held += 1  # wait for the next good frame
                    continue
                if held:
                    for m in model.between(good, cur, held):
                        w.write(_hwc(m))
                    held = 0
                w.write(_hwc(cur))
                good = cur
                written = i + 1
    for line in w.notes:
        log(line)
    return {"n": written, "out": str(out), "fps": float(info.fps * (factor or 1)), "factor": factor,
            "filled": sorted(set(fill)) if fill else []}
