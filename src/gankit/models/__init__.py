"""Generator and discriminator architectures, looked up by the name in `model.arch`."""

from __future__ import annotations

from torch import nn

from gankit.config import ModelConfig
from gankit.models.mlp import MLPDiscriminator, MLPGenerator

ARCHS = {"mlp": (MLPGenerator, MLPDiscriminator)}


def build_models(cfg: ModelConfig, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(G, D) for data whose examples have shape `data_shape`."""
    G_cls, D_cls = ARCHS[cfg.arch]
    return G_cls(cfg, data_shape), D_cls(cfg, data_shape)
