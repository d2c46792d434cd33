"""Using a super-resolution run on a user's files: one image, a folder of images, or a video.

Any size goes in: the input is processed in overlapping tiles (`gankit.tiling`), so memory
stays bounded by the tile, not the image. An input whose channel count differs from the run's
is converted (grey <-> RGB) with one line saying so; `strict` refuses it. Video is upscaled frame
by frame at the input's frame rate; its audio is kept (`gankit.media.soundtrack`). Every output appears
whole or not at all (`gankit.media`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit.data import from_model, to_model
from gankit.errors import GankitError, warn
from gankit.media.apply import apply_to_media
from gankit.media.scans import ScanOptions
from gankit.media.images import NoteOnce, conform
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
                  where: str = "input", notes: NoteOnce | None = None) -> np.ndarray:
    """uint8 (H, W, C) -> uint8 (s*H, s*W, C_run) through the run's G, tile by tile."""
    c = run.data_meta["channels"]
    h, w = img.shape[:2]
    x, note = conform(img, (c, h, w), strict, where)  # channels only: any size goes in
    if notes is not None:
        notes.add(note)
    t = to_model(torch.from_numpy(np.array(x))[None].to(run.device), "image")
    y = tiled(run.nets["G"], t, tile, overlap, run.config.superres.scale)
    return from_model(y, "image")[0].permute(1, 2, 0).cpu().numpy()


def superres_path(run, src: str | Path, out: str | Path, scale: int | None = None, tile: int = 128,
                  overlap: int = 16, strict: bool = False, overwrite: bool = False,
                  log: Callable[[str], None] = warn, scan: ScanOptions | None = None) -> dict:
    """Upscale an image, a folder of images (same relative names under `out`) or a video."""
    check_scale(run, scale)
    if tile < 8 or overlap < 0 or tile < 2 * overlap:
        raise GankitError(f"--tile {tile} --overlap {overlap}: need tile >= 8 and tile >= 2 x overlap")
    notes = NoteOnce(log)

    def one(img, where):
        return upscale_image(run, img, tile, overlap, strict, where, notes)

    done = apply_to_media(one, src, out, overwrite, log, scan)
    notes.close("images")
    return {**done, "scale": run.config.superres.scale}
