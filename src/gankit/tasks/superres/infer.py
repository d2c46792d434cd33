"""Using a super-resolution run on a user's files: one image, a folder of images, or a video.

Any size goes in: the input is processed in overlapping tiles (`gankit.tiling`), so memory
stays bounded by the tile, not the image. An input whose channel count differs from the run's
is converted (grey <-> RGB) with one line saying so; `strict` refuses it. Video is upscaled frame
by frame at the input's frame rate; its audio is dropped, with a warning. Every output appears
whole or not at all (`gankit.media`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit.data import from_model, to_model
from gankit.errors import GankitError, warn
from gankit.media import (IMAGE_SUFFIXES, VIDEO_OUT_FORMATS, AtomicDir, VideoWriter, conform, input_kind,
                          list_images, probe_video, read_frames, read_image, write_image)
from gankit.tiling import tiled


def check_scale(run, scale: int | None) -> int:
    run.need("superres", "super-resolution")
    trained = run.config.superres.scale
    if scale is not None and scale != trained:
        raise GankitError(f"--scale {scale}: this run was trained for x{trained} only "
                          f"(superres.scale); drop --scale or train a x{scale} run")
    return trained


@torch.no_grad()
def upscale_image(run, img: np.ndarray, tile: int = 128, overlap: int = 16, strict: bool = False,
                  where: str = "input", notes: list | None = None) -> np.ndarray:
    """uint8 (H, W, C) -> uint8 (s*H, s*W, C_run) through the run's G, tile by tile."""
    c = run.data_meta["channels"]
    h, w = img.shape[:2]
    x, note = conform(img, (c, h, w), strict, where)  # channels only: any size goes in
    if note and notes is not None:
        notes.append(note)
    t = to_model(torch.from_numpy(np.array(x))[None].to(run.device), "image")
    y = tiled(run.nets["G"], t, tile, overlap, run.config.superres.scale)
    return from_model(y, "image")[0].permute(1, 2, 0).cpu().numpy()


def superres_path(run, src: str | Path, out: str | Path, scale: int | None = None, tile: int = 128,
                  overlap: int = 16, strict: bool = False, overwrite: bool = False,
                  log: Callable[[str], None] = warn) -> dict:
    """Upscale an image, a folder of images (same relative names under `out`) or a video."""
    check_scale(run, scale)
    if tile < 8 or overlap < 0 or tile < 2 * overlap:
        raise GankitError(f"--tile {tile} --overlap {overlap}: need tile >= 8 and tile >= 2 x overlap")
    src, out = Path(src), Path(out)
    kind = input_kind(src)
    if out.resolve() == src.resolve():
        raise GankitError(f"--out {out}: the same path as the input; choose another output")
    if kind == "image" and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: an image input is written to an image ({', '.join(IMAGE_SUFFIXES)})")
    if kind == "video" and out.suffix.lower() not in VIDEO_OUT_FORMATS:
        raise GankitError(f"--out {out}: a video is written to {', '.join(VIDEO_OUT_FORMATS)}")
    if kind != "folder" and out.exists() and not overwrite:
        raise GankitError(f"--out {out}: already exists; choose another path or pass --overwrite")
    notes: list[str] = []

    def one(img, where):
        y = upscale_image(run, img, tile, overlap, strict, where, notes)
        if len(notes) == 1:
            log(notes[0])
            notes.append("")  # said once
        return y

    s = run.config.superres.scale
    if kind == "image":
        write_image(one(read_image(src), str(src)), out)
        return {"kind": kind, "n": 1, "out": str(out), "scale": s}
    if kind == "folder":
        files = list_images(src)
        with AtomicDir(out, overwrite=overwrite) as tmp:
            for f in files:
                dst = tmp / f.relative_to(src)
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_image(one(read_image(f), str(f)), dst)
        return {"kind": kind, "n": len(files), "out": str(out), "scale": s}
    info = probe_video(src)
    if info.has_audio:
        log(f"{src}: its audio track is dropped (gankit writes the upscaled frames only)")
    n = 0
    with VideoWriter(out, info.fps) as w:
        for frame in read_frames(src):
            w.write(one(frame, f"{src} frames"))
            n += 1
    if w.note:
        log(w.note)
    return {"kind": kind, "n": n, "out": str(out), "scale": s, "fps": float(info.fps)}
