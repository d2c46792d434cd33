"""The translation task's config section (`translate:`): pix2pix on paired data, CycleGAN on
unpaired data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged


@dataclass(frozen=True)
class TranslateConfig:
    """The translation task (task: translate): pix2pix on paired data, CycleGAN on unpaired data.
    The networks' widths are model.g_width / model.d_width; the adversarial loss is train.loss
    (ns: the cGAN loss of pix2pix; ls: CycleGAN's least squares)."""

    method: Literal["pix2pix", "cyclegan"] = "pix2pix"
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # pix2pix: which domain is the input
    g_arch: Literal["unet", "resnet"] = "unet"  # pix2pix: U-Net; CycleGAN: ResNet blocks
    norm: Literal["batch", "instance", "none"] = "batch"  # pix2pix: batch; CycleGAN: instance
    # resnet generator: residual blocks (6 at 128 px, 9 at 256 px in the paper)
    g_blocks: int = ranged(9, lambda v: v >= 0, "an integer >= 0")
    # PatchGAN depth; None: the 70x70-at-256 patch scaled to the image size
    d_layers: int | None = ranged(None, lambda v: v is None or 1 <= v <= 6, "1 to 6, or null")
    # weight of the adversarial term in G's loss (0: L1 only, the paper's ablation)
    gan: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")
    l1: float = ranged(100.0, lambda v: v >= 0, "a number >= 0")  # pix2pix: lambda of the L1 term
    cycle: float = ranged(10.0, lambda v: v >= 0, "a number >= 0")  # CycleGAN: lambda of the cycle-consistency terms
    # CycleGAN: identity term weight, x lambda (needs equal channel counts)
    identity: float = ranged(0.5, lambda v: v >= 0, "a number >= 0")
    pool: int = ranged(50, lambda v: v >= 0, "an integer >= 0")  # CycleGAN: each D also sees up to this many earlier fakes (0: off)
    # fixed held-out examples in every input | output | target grid
    grid_examples: int = ranged(12, lambda v: 1 <= v <= 64, "1 to 64")


SECTIONS = {"translate": TranslateConfig}
