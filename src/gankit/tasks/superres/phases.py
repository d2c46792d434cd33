"""The super-resolution task's maths, over LR / HR batches on the device.

Phase 1 (PSNR-oriented, SRResNet; every step while t < superres.pretrain_steps, or always when
it is null):
    loss_G = l1 * |G(lr) - hr|_1
Phase 2 (SRGAN fine-tuning with ESRGAN's relativistic average discriminator, Wang et al. 2018):
    D:  -E[log sigma(D(hr) - E D(sr))] - E[log(1 - sigma(D(sr) - E D(hr)))]         (train.loss ragan)
    G:  l1 * |sr - hr|_1 + adv * [the D loss with real and fake swapped]
          + fm * sum_k |D_k(sr) - D_k(hr)|_1 / K       (feature matching on D's K feature maps)
ESRGAN's perceptual term needs a pretrained VGG, which is not reachable offline: there is none
here, and nothing pretends to be one. Feature matching on the discriminator's own features
(Salimans et al. 2016) is the stand-in, and it is named as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.tasks.phases_common import LossPair, frozen, stats
from gankit.util import full

STATS = ("loss_g", "l1", "loss_d", "adv_g", "fm", "d_real", "d_fake", "gan_steps")


@dataclass(frozen=True)
class Objective(LossPair):
    l1: float = 1.0
    adv: float = 0.0
    fm: float = 0.0
    loss: str = "ragan"


def l1_phase(st, lr: Tensor, hr: Tensor) -> Tensor:
    """The PSNR-oriented update: G alone, on L1."""
    sr = st.fwd["G"](lr)  # (B, C, s*h, s*w)
    l1 = (sr - hr).abs().mean()
    st.update("G", st.obj.l1 * l1)
    return stats(STATS, loss_g=st.obj.l1 * l1.detach(), l1=l1)


def gan_phase(st, lr: Tensor, hr: Tensor) -> Tensor:
    """One D update, then one G update on L1 + adversarial + feature matching."""
    obj, G, D = st.obj, st.fwd["G"], st.nets["D"]
    pair = obj.pair
    sr = G(lr)
    real_l, fake_l = full(st.fwd["D"](hr)), full(st.fwd["D"](sr.detach()))  # (B,)
    loss_d = pair.d(real_l, fake_l)
    st.update("D", loss_d)
    with frozen(D):
        f_sr = D.features(sr)
        with torch.no_grad():
            f_hr = D.features(hr)
        fake_g = full(D.head(f_sr[-1]))  # the updated D on sr, its features reused
        real_g = full(D.head(f_hr[-1]))
        adv = pair.g(fake_g, real_g if pair.g_needs_real else None)
        fm = sum((a - b).abs().mean() for a, b in zip(f_sr, f_hr)) / len(f_sr)
        l1 = (sr - hr).abs().mean()
        loss_g = obj.l1 * l1 + obj.adv * adv + obj.fm * fm
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_g=loss_g, l1=l1, loss_d=loss_d, adv_g=adv, fm=fm,
                     d_real=torch.sigmoid(real_l - fake_l.mean()).mean(),
                     d_fake=torch.sigmoid(fake_l - real_l.mean()).mean(), gan_steps=1.0)
