"""Using a translation run on a user's files: one image, a folder of images, or a video.

    translate_path(run, "photo.png", "out.png")                # pix2pix: its training direction
    translate_path(run, "clip.mp4", "out.mp4", "BtoA")         # CycleGAN: either direction

An input whose size or channel count differs from what the run was trained on is converted
(resized; grey <-> RGB) and one line says so; `strict` refuses it instead. Video is translated
frame by frame (the tutorial's video style transfer) at the input's frame rate; its audio is
kept (`gankit.media.soundtrack`). Every output appears whole or not at all (`gankit.media`).
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
from gankit.tasks.translate.task import domains

DIRECTIONS = ("AtoB", "BtoA")


def generator(run, direction: str | None = None) -> tuple[torch.nn.Module, tuple[int, int, int], str]:
    """(G, the (C, H, W) it takes, the direction) of a translation run for `direction`."""
    run.need("translate", "translating")
    t = run.config.translate
    if direction is not None and direction not in DIRECTIONS:
        raise GankitError(f"--direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    if t.method == "pix2pix":
        if direction not in (None, t.direction):
            raise GankitError(f"--direction {direction}: this pix2pix run was trained {t.direction} only "
                              f"(translate.direction); drop --direction or train a {direction} run")
        return run.nets["G"], domains(run.config, run.data_meta)[0], t.direction
    direction = direction or "AtoB"
    shape = run.data_meta["shape_a" if direction == "AtoB" else "shape_b"]
    return run.nets["G_ab" if direction == "AtoB" else "G_ba"], tuple(shape), direction


@torch.no_grad()
def translate_images(run, x: torch.Tensor, direction: str | None = None, batch: int = 64) -> torch.Tensor:
    """uint8 (N, C, H, W) images of the run's input shape -> uint8 translations."""
    G, shape, _ = generator(run, direction)
    if tuple(x.shape[1:]) != tuple(shape):
        raise GankitError(f"images of shape {tuple(x.shape[1:])}; this run translates {tuple(shape)}")
    out = [from_model(G(to_model(part.to(run.device), "image")), "image").cpu() for part in x.split(batch)]
    return torch.cat(out)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)


def translate_path(run, src: str | Path, out: str | Path, direction: str | None = None, strict: bool = False,
                   overwrite: bool = False, log: Callable[[str], None] = warn, scan: ScanOptions | None = None) -> dict:
    """Translate an image, a folder of images (the same relative names under `out`) or a video
    (`out` a .mp4/.mov/.mkv); returns what was done."""
    G, shape, direction = generator(run, direction)
    notes = NoteOnce(log)

    def one(img: np.ndarray, where: str) -> np.ndarray:
        x, note = conform(img, shape, strict, where)
        notes.add(note)
        return _hwc(translate_images(run, torch.from_numpy(np.array(x))[None], direction)[0])

    done = apply_to_media(one, src, out, overwrite, log, scan)
    notes.close("images")
    return {**done, "direction": direction}
