"""Fully connected generator and discriminator (the tutorial's networks, section 5.2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.config import ModelConfig


class MLPGenerator(nn.Module):
    """z (B, z_dim) -> x (B, *out_shape): Linear layers with LeakyReLU between, tanh out."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, ...]):
        super().__init__()
        self.z_dim, self.out_shape = cfg.z_dim, tuple(out_shape)
        widths = [cfg.z_dim, *cfg.g_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(cfg.leak)]
        layers.append(nn.Linear(widths[-1], math.prod(out_shape)))
        if cfg.g_out == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.out_shape)  # (B, C, H, W) or (B, D)


class MLPDiscriminator(nn.Module):
    """x (B, *in_shape) -> one logit (B,): Linear layers with LeakyReLU and dropout between.

    The tutorial ends D with a Sigmoid and uses BCELoss; here D returns the logit and the loss
    applies the sigmoid inside a numerically stable log-sum-exp (see `gankit.losses`).
    """

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, ...]):
        super().__init__()
        widths = [math.prod(in_shape), *cfg.d_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(cfg.leak)]
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # (B,)
