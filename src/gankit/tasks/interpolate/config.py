"""The frame-interpolation task's config section (`interpolate:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged


@dataclass(frozen=True)
class InterpolateConfig:
    """The frame-interpolation task (task: interpolate): a U-Net G on the two neighbours
    (t-1, t+1) predicts frame t; a temporal PatchGAN D judges (t-1, t, t+1) triplets. G's width
    is model.g_width, D's model.d_width; the adversarial loss is train.loss (ns)."""

    residual: bool = True  # G predicts the correction to the neighbours' average, not the frame (without flow)
    flow: bool = False  # G also sees both neighbours warped halfway by Farneback flow, fuses and corrects them
    norm: Literal["batch", "instance", "none"] = "batch"
    # PatchGAN depth; null: the 70x70-at-256 patch scaled to the frame size
    d_layers: int | None = ranged(None, lambda v: v is None or 1 <= v <= 6, "1 to 6, or null")
    gan: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # weight of G's adversarial term (0: L1 only)
    l1: float = ranged(100.0, lambda v: v >= 0, "a number >= 0")  # weight of L1 to the true middle frame
    grid_examples: int = ranged(8, lambda v: 1 <= v <= 64, "1 to 64")  # held-out triplets in every grid


SECTIONS = {"interpolate": InterpolateConfig}
