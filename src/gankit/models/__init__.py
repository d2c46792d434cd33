"""Generator and discriminator architectures, looked up by the name in `model.arch`.

Every architecture follows the interfaces in `gankit.models.base`: G(z, y=None) -> x and
D(x, y=None) -> logits, with D.features / D.head / D.aux for heads that need them.
"""

from __future__ import annotations

import functools

from torch import nn

from gankit.errors import GankitError
from gankit.models.base import RESOLUTIONS, describe_sides, nearest_side
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.models.mlp import MLPDiscriminator, MLPGenerator
from gankit.models.r3gan import R3GANDiscriminator, R3GANGenerator
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gankit.tasks.generate.config import ModelConfig

# name a user types (model.arch) -> (generator class, discriminator class)
ARCHS = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "mlp-bn": (functools.partial(MLPGenerator, batchnorm=True), MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    "r3gan": (R3GANGenerator, R3GANDiscriminator),
    "stylegan2": (StyleGAN2Generator, StyleGAN2Discriminator),
}

# What each arch builds is `base.RESOLUTIONS`, in words `describe_sides(arch)`.
__all__ = ["ARCHS", "RESOLUTIONS", "build_models", "describe_sides", "nearest_side"]


def build_models(cfg: ModelConfig, data_shape: tuple[int, ...], n_classes: int = 0
                 ) -> tuple[nn.Module, nn.Module]:
    """(G, D) for examples of shape `data_shape`; `n_classes` > 0 when the data is labelled."""
    if cfg.arch in RESOLUTIONS:
        if len(data_shape) != 3 or data_shape[1] != data_shape[2] or data_shape[1] not in RESOLUTIONS[cfg.arch]:
            shape = "x".join(map(str, data_shape))
            raise GankitError(f"model.arch {cfg.arch!r} builds square images of side {describe_sides(cfg.arch)}; "
                              f"the data is {shape} (set data.resolution)")
    if (cfg.conditional or cfg.d_head != "plain") and n_classes < 2:
        raise GankitError("model.conditional and model.d_head projection/acgan need labelled data "
                          "with at least 2 classes; this data has none")
    G_cls, D_cls = ARCHS[cfg.arch]
    return G_cls(cfg, data_shape, n_classes), D_cls(cfg, data_shape, n_classes)
