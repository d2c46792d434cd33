"""The audio task's maths: WaveGAN and SpecGAN's WGAN-GP step (Donahue et al. 2019).

    x      real clips (B, 1, 16384) in [-1, 1]  (WaveGAN)
           or their normalised log spectrograms (B, 1, 128, 128)  (SpecGAN, data/spectrogram.py)
    D:     train.n_critic times, each on its own real batch and latents:
           loss(D(x), D(G(z))) + reg.gp E[(||grad D(x_hat)|| - 1)^2]   (train.loss wasserstein:
           D(G(z)) - D(x), WGAN-GP as the paper; D's phase shuffle on WaveGAN's activations)
    G:     loss_G(D(G(z)))                          one update per step

Conditional (model.conditional): every term takes the digit y, G(z, y) and the projection
D(x, y): the critic batch's fakes carry its real clips' labels, the G update the first batch's,
and the penalty's interpolates are between a real and a fake clip of the same y.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.losses import LOSSES
from gankit.regularizers import gradient_penalty
from gankit.tasks.phases_common import frozen, stats

STATS = ("loss_d", "loss_g", "gp", "w_dist")


@dataclass(frozen=True)
class Objective:
    loss: str = "wasserstein"
    gp: float = 10.0


def wgan_phase(st, reals: list[Tensor], zs: Tensor, ys: list[Tensor] | None = None) -> Tensor:
    """reals: n_critic batches in model space; zs (n_critic + 1, B, z_dim); ys: the batches'
    labels, n_critic x (B,), for a conditional run (None: unconditional)."""
    obj, G, D = st.obj, st.fwd["G"], st.fwd["D"]
    loss = LOSSES[obj.loss]
    st.nets["D"].generator = st.gens.get("aug")  # phase shuffle's stream (WaveGAN's D)
    labels = ys if ys is not None else [None] * len(reals)
    for real, z, y in zip(reals, zs, labels):
        fake = G(z, y).detach()  # fakes of the real batch's digits
        real_l, fake_l = D(real, y), D(fake, y)
        gp = gradient_penalty(D, real, fake, y, st.gens.get("aug")) if obj.gp else torch.zeros((), device=real.device)
        loss_d = loss.d(real_l, fake_l) + obj.gp * gp
        st.update("D", loss_d)
    with frozen(st.nets["D"]):
        fake_l = st.nets["D"](G(zs[-1], labels[0]), labels[0])
        loss_g = loss.g(fake_l, real_l.detach()) if loss.g_needs_real else loss.g(fake_l)
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, gp=gp, w_dist=real_l.mean() - fake_l.mean())
