"""Using a denoising run on a user's files: one image, a folder of images, or a video.

    denoise_path(run, "scan.png", "clean.png")

The network is fully convolutional, so an image keeps its own size; it is run in overlapping tiles
(`gankit.tiling`) so that memory stays bounded on large images. An image whose channel count
differs from the run's is converted (grey <-> RGB), with one line saying so; `strict` refuses it.
Every output appears whole or not at all (`gankit.media`). The run removes the noise it was trained
on: a level far from `denoise.noise` (train.log and the report say which) is restored less well.
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
from gankit.tasks.denoise.phases import restore
from gankit.tiling import tiled

TILE, OVERLAP = 256, 32  # the window's core side and context (pixels); 320 px windows


@torch.no_grad()
def denoise_images(run, x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) noisy images (C the run's channels, any size) -> uint8 restorations."""
    run.need("denoise", "denoising")
    c = run.data_meta["shape"][0]
    if x.ndim != 4 or x.shape[1] != c:
        raise GankitError(f"images of shape {tuple(x.shape[1:])}; this run denoises {c}-channel images")
    G, residual = run.nets["G"], run.config.denoise.residual
    y = to_model(x.to(run.device), "image")
    try:
        out = tiled(lambda t: restore(G, t, residual), y, TILE, OVERLAP)
    except GankitError as e:  # the U-Net's padding refuses images too small for its depth
        raise GankitError(f"image of {x.shape[-1]}x{x.shape[-2]} px: {e}") from None
    return from_model(out, "image").cpu()


def denoise_path(run, src: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False,
                 log: Callable[[str], None] = warn, scan: ScanOptions | None = None) -> dict:
    """Denoise an image, a folder of images (the same relative names under `out`) or a video
    (`out` a .mp4/.mov/.mkv); returns what was done."""
    run.need("denoise", "denoising")
    c = run.data_meta["shape"][0]
    notes = NoteOnce(log)

    def one(img: np.ndarray, where: str) -> np.ndarray:
        h, w = img.shape[:2]
        x, note = conform(img, (c, h, w), strict, where)  # channels only: the size is kept
        notes.add(note)
        return denoise_images(run, torch.from_numpy(np.array(x))[None])[0].permute(1, 2, 0).numpy()

    done = apply_to_media(one, src, out, overwrite, log, scan)
    notes.close("images")
    return {**done, "noise": run.config.denoise.noise}
