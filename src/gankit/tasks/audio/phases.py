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

AC-GAN (model.d_head: acgan, Odena et al. 2017, with WGAN-GP as Gulrajani et al. 2017's conditional
CIFAR-10 model): D is the plain critic plus a classifier aux(h) of the digits over the same
features h, and both losses add reg.aux_weight times its cross-entropy against the asked digit:
           D:  ... + aux_weight (CE(aux(x), y) + CE(aux(G(z, y)), y))
           G:  ... + aux_weight CE(aux(G(z, y)), y)
(audio.aux_fakes false: D's term is aux_weight CE(aux(x), y), the classifier learns real clips
only.) The gradient penalty stays on the critic's output only (D(x_hat, y) is the critic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.losses import LOSSES
from gankit.regularizers import gradient_penalty
from gankit.tasks.phases_common import frozen, stats

STATS = ("loss_d", "loss_g", "gp", "w_dist", "aux_d", "aux_g")  # aux_*: AC-GAN only (0 and not logged otherwise)


@dataclass(frozen=True)
class Objective:
    loss: str = "wasserstein"
    gp: float = 10.0
    aux_classes: int = 0  # > 0: D's AC-GAN classifier has this many class logits (model.d_head: acgan)
    aux_weight: float = 1.0  # reg.aux_weight: the weight of its cross-entropy terms
    aux_fakes: bool = True  # audio.aux_fakes: D's classifier learns the fakes' digits too


def wgan_phase(st, reals: list[Tensor], zs: Tensor, ys: list[Tensor] | None = None) -> Tensor:
    """reals: n_critic batches in model space; zs (n_critic + 1, B, z_dim); ys: the batches'
    labels, n_critic x (B,), for a conditional run (None: unconditional)."""
    obj, G, D = st.obj, st.fwd["G"], st.fwd["D"]
    loss = LOSSES[obj.loss]
    st.nets["D"].generator = st.gens.get("aug")  # phase shuffle's stream (WaveGAN's D)
    labels = ys if ys is not None else [None] * len(reals)
    zero = zs.new_zeros(())
    aux_d = aux_g = zero
    for real, z, y in zip(reals, zs, labels):
        fake = G(z, y).detach()  # fakes of the real batch's digits
        if obj.aux_classes:  # one pass through D's body per batch serves the critic and the classifier
            h_r, h_f = D.features(real), D.features(fake)  # (B, F)
            real_l, fake_l = D.critic(h_r, y), D.critic(h_f, y)
            # D names the digit of real clips and of fakes alike: CE(aux(x), y) + CE(aux(G(z, y)), y)
            aux_d = F.cross_entropy(D.aux(h_r), y)
            if obj.aux_fakes:
                aux_d = aux_d + F.cross_entropy(D.aux(h_f), y)
        else:
            real_l, fake_l = D(real, y), D(fake, y)
        gp = gradient_penalty(D, real, fake, y, st.gens.get("aug")) if obj.gp else zero  # on the critic only
        loss_d = loss.d(real_l, fake_l) + obj.gp * gp
        if obj.aux_classes:
            loss_d = loss_d + obj.aux_weight * aux_d
        st.update("D", loss_d)
    with frozen(st.nets["D"]):
        fake = G(zs[-1], labels[0])
        if obj.aux_classes:
            h = D.features(fake)  # (B, F)
            fake_l = D.critic(h, labels[0])
            aux_g = F.cross_entropy(D.aux(h), labels[0])  # G makes clips D hears as the asked digit
        else:
            fake_l = D(fake, labels[0])
        loss_g = loss.g(fake_l, real_l.detach()) if loss.g_needs_real else loss.g(fake_l)
        if obj.aux_classes:
            loss_g = loss_g + obj.aux_weight * aux_g
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, gp=gp, w_dist=real_l.mean() - fake_l.mean(), aux_d=aux_d,
                     aux_g=aux_g)
