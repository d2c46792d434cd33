"""The generator's input: z ~ N(0, I), plus InfoGAN's codes when the model has them.

G's input is [z (z_dim), one_hot(c_cat) (info_cat), c_cont (info_cont)], in that order
(Chen et al. 2016: a uniform categorical code and continuous codes uniform in [-1, 1]).

Also the truncation trick, the one implementation every command shares (`gankit sample
--truncate`, `gankit synth --truncate`): in w for generators with a mapping network (StyleGAN2,
recognised by `has_styles`), in z for all others (`truncate_z`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.models.base import one_hot
from gankit.tasks.generate.config import ModelConfig


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


# ---- truncation ------------------------------------------------------------------------------
# The truncation trick trades diversity for typicality by pulling latents towards the centre of
# their distribution. Generators with a mapping network (StyleGAN2) do it in w, where the centre is
# the running mean w_avg; every other generator does it in z, where the centre is 0.

TRUNCATION_Z = ("z <- psi * z (the truncation trick in z, by scaling, not BigGAN's resampling of "
                "|z| > threshold; the noise part only, InfoGAN codes unchanged)")
TRUNCATION_W = "w <- w_avg + psi * (w - w_avg) (the truncation trick in w, after the mapping network)"


def has_styles(G: torch.nn.Module) -> bool:
    """Whether G has StyleGAN's interface (`mapping`, `synthesis`, `w_avg`, `num_ws`): duck typing,
    so an EMA copy or an exported generator qualifies as well as the class itself."""
    return hasattr(G, "mapping") and hasattr(G, "synthesis")


def check_truncation(psi: float | None) -> None:
    """Refuse, in one line, a truncation psi outside (0, 1] (None: no truncation)."""
    if psi is not None and not 0 < psi <= 1:  # also refuses NaN
        raise GankitError(f"--truncate {psi:g}: expected 0 < psi <= 1 (1: no truncation)")


def truncation_method(G: torch.nn.Module) -> str:
    """How `truncate` acts on this generator, in words (for records such as synth.json)."""
    return TRUNCATION_W if has_styles(G) else TRUNCATION_Z


def truncate_z(z_in: Tensor, psi: float | None, z_dim: int) -> Tensor:
    """(B, z_dim + codes) generator inputs with the noise part scaled by psi: truncation in z.

    Scaling rather than resampling keeps the map from seed to sample continuous in psi (psi -> 0
    makes every sample approach G(0)); InfoGAN's codes (the columns after z_dim) are kept."""
    if psi is None or psi == 1:
        return z_in
    out = z_in.clone()
    out[:, :z_dim] *= psi
    return out
