"""Fully connected generator and discriminator: the tutorial's networks (section 5.2), and
`mlp-bn`, the same generator with batch-normalised hidden layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.models.base import DHead, Discriminator, Dropout, one_hot, sn, split_blocks
from gankit.tasks.generate.config import ModelConfig


class MLPGenerator(nn.Module):
    """z (B, in_dim) [+ one-hot y] -> x (B, *out_shape): Linear layers, LeakyReLU between, tanh out.

    With `batchnorm` (arch mlp-bn), each hidden Linear is followed by BatchNorm1d."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, ...], n_classes: int = 0,
                 batchnorm: bool = False):
        super().__init__()
        self.in_dim = cfg.z_dim + cfg.info_cat + cfg.info_cont
        self.out_shape = tuple(out_shape)
        self.n_classes = n_classes if cfg.conditional else 0  # labels enter as a one-hot
        widths = [self.in_dim + self.n_classes, *cfg.g_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(a, b))
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(cfg.leak))
        layers.append(nn.Linear(widths[-1], math.prod(out_shape)))
        if cfg.g_out == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def ordered_blocks(self) -> list[nn.Module]:
        """Each Linear with what follows it (BN, activation), the latent side first."""
        return split_blocks(self.net, (nn.Linear,))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            if y is None:
                raise ValueError("conditional generator called without labels")
            z = torch.cat([z, one_hot(y, self.n_classes)], 1)  # (B, in_dim + n_classes)
        return self.net(z).view(-1, *self.out_shape)  # (B, C, H, W) or (B, D)


class MLPDiscriminator(Discriminator):
    """x (B, *in_shape) -> logit (B,): Linear layers with LeakyReLU and dropout between.

    The tutorial ends D with a Sigmoid and uses BCELoss; here D returns the logit and the loss
    applies the sigmoid inside a numerically stable softplus (see `gankit.losses`).
    """

    block_starts = (nn.Linear,)  # a block: a Linear with its activation and dropout

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, ...], n_classes: int = 0):
        super().__init__()
        widths = [math.prod(in_shape), *cfg.d_hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [sn(nn.Linear(a, b), cfg.spectral_norm), nn.LeakyReLU(cfg.leak)]
            if cfg.d_dropout > 0:
                layers.append(Dropout(cfg.d_dropout))
        self.body = nn.Sequential(*layers)  # (B, d_hidden[-1])
        self.feat_dim = widths[-1]
        self.heads = DHead(self.feat_dim, cfg.d_head, n_classes, cfg.info_cat + cfg.info_cont,
                           cfg.spectral_norm)
