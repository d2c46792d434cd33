"""The super-resolution task's config section (`superres:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged


@dataclass(frozen=True)
class SuperresConfig:
    """The super-resolution task (task: superres): SRResNet trained on L1, then (SRGAN/ESRGAN)
    fine-tuned with a relativistic adversarial term. G's width is model.g_width, D's
    model.d_width; the adversarial loss is train.loss (ragan: ESRGAN's relativistic average)."""

    scale: Literal[2, 3, 4] = 4  # LR -> HR factor
    patch: int = ranged(96, lambda v: 8 <= v <= 512, "8 to 512")  # HR training patch side (LR patch = patch / scale)
    g_blocks: int = ranged(16, lambda v: v >= 1, "an integer >= 1")  # residual blocks of SRResNet (16 in Ledig et al.)
    # L1-only steps before the GAN phase; None: every step is L1 (srresnet)
    pretrain_steps: int | None = ranged(None, lambda v: v is None or v >= 0, "an integer >= 0, or null")
    l1: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # weight of the pixel L1 term
    # weight of the adversarial term in the GAN phase (ESRGAN's lambda)
    adv: float = ranged(5e-3, lambda v: v >= 0, "a number >= 0")
    # weight of feature matching on D's features (no pretrained VGG is reachable offline)
    fm: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")


SECTIONS = {"superres": SuperresConfig}
