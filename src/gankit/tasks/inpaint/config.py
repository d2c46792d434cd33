"""The inpainting task's config section (`inpaint:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class InpaintConfig:
    """The inpainting task (task: inpaint): a U-Net G on the image with its hole zeroed plus the
    mask as a channel, its output composited so known pixels are kept exactly; an SN-PatchGAN D
    on the completed image and the mask (DeepFill v2's). G's width is model.g_width, D's
    model.d_width; the adversarial loss is train.loss (hinge, as SN-PatchGAN)."""

    mask: str = "mixed"  # hole kind for training: box:A, box:A-B (area fraction), stroke, mixed (gankit.data.masks)
    patch: int | None = None  # crop side for photos and folders (None: 64); MNIST uses whole 28 px digits
    norm: Literal["batch", "instance", "none"] = "batch"  # G's norm layers
    d_norm: Literal["batch", "instance", "none"] = "none"  # D's (SN-PatchGAN: spectral norm alone)
    d_layers: int | None = None  # PatchGAN depth; null: the 70x70-at-256 patch scaled to the image size
    gan: float = 1.0  # weight of G's adversarial term (0: L1 only)
    l1_hole: float = 100.0  # weight of L1 inside the hole
    l1_valid: float = 10.0  # weight of L1 of G's raw output on the known pixels (kept by the composite)
    grid_examples: int = 8  # held-out images in every grid


SECTIONS = {"inpaint": InpaintConfig}
