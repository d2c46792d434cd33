"""The generator's input: z ~ N(0, I), plus InfoGAN's codes when the model has them.

G's input is [z (z_dim), one_hot(c_cat) (info_cat), c_cont (info_cont)], in that order
(Chen et al. 2016: a uniform categorical code and continuous codes uniform in [-1, 1]).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gankit.config import ModelConfig
from gankit.models.base import one_hot


class Latent(NamedTuple):
    z_in: Tensor  # (B, z_dim + info_cat + info_cont): what G takes
    c_cat: Tensor | None  # (B,) int64 categorical code, or None
    c_cont: Tensor | None  # (B, info_cont) continuous codes, or None


def draw_latent(cfg: ModelConfig, n: int, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", z: Tensor | None = None,
                c_cat: Tensor | None = None) -> Latent:
    """n latents; `z` or `c_cat` may be given to fix them (e.g. a fixed grid, a chosen code)."""
    if z is None:
        z = torch.randn(n, cfg.z_dim, generator=generator, device=device)
    parts, cont = [z], None
    if cfg.info_cat:
        if c_cat is None:
            c_cat = torch.randint(cfg.info_cat, (n,), generator=generator, device=device)
        parts.append(one_hot(c_cat.to(z.device), cfg.info_cat))  # no host read, unlike F.one_hot
    else:
        c_cat = None
    if cfg.info_cont:
        cont = torch.rand(n, cfg.info_cont, generator=generator, device=device) * 2 - 1
        parts.append(cont.to(z.device))
    return Latent(torch.cat(parts, 1) if len(parts) > 1 else z, c_cat, cont)
