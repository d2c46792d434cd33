"""The denoising task's maths, in model space ([-1, 1]); y is the noisy image, x the clean one.

    out  = y + G(y)   (residual)  or  G(y)             (B, C, H, W); G is the pix2pix U-Net
    D:  pair.d(D(cat(y, x)), D(cat(y, out)))         a conditional PatchGAN (pix2pix): is this
                                                     the clean image of that noisy one?
    G:  gan pair.g(D(cat(y, out))) + l1 |out - x|_1   (mean over pixels and channels)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.losses import LOSSES
from gankit.tasks.phases_common import frozen, stats
from gankit.util import full

STATS = ("loss_d", "loss_g", "adv_g", "l1", "d_real", "d_fake")


@dataclass(frozen=True)
class Objective:
    gan: float = 1.0
    l1: float = 100.0
    residual: bool = True
    loss: str = "ns"

    @property
    def pair(self):
        return LOSSES[self.loss]


def restore(G, y: Tensor, residual: bool) -> Tensor:
    """G's estimate of the clean image from the model-space noisy image y (B, C, H, W)."""
    return y + G(y) if residual else G(y)


def _judge(D, y: Tensor, img: Tensor) -> Tensor:
    return full(D(torch.cat([y, img], 1)).flatten(1))  # (B, patches)


def denoise_phase(st, y: Tensor, x: Tensor) -> Tensor:
    obj, D = st.obj, st.nets["D"]
    pair = obj.pair
    out = restore(st.fwd["G"], y, obj.residual)
    real_l = _judge(st.fwd["D"], y, x)
    fake_l = _judge(st.fwd["D"], y, out.detach())
    loss_d = pair.d(real_l, fake_l)
    st.update("D", loss_d)
    with frozen(D):  # G's update reaches D's input only
        adv = pair.g(_judge(D, y, out), real_l.detach() if pair.g_needs_real else None)
        l1 = (out - x).abs().mean()
        loss_g = obj.gan * adv + obj.l1 * l1
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, adv_g=adv, l1=l1, d_real=torch.sigmoid(real_l).mean(),
                     d_fake=torch.sigmoid(fake_l).mean())
