"""The reconstruction task's maths, in model space ([-1, 1]); y is the classical reconstruction
(FBP or zero-filled), x the true image, k the measured k-space and M the sampled columns (MRI).

    out  = y + G(y)   (residual)  or  G(y)                     (B, 1, N, N); G the pix2pix U-Net
    MRI: out = 2 Re ifft2c(M k + (1 - M) fft2c((out + 1) / 2)) - 1   the data-consistency step
    D:  pair.d(D(cat(y, x)), D(cat(y, out)))                    a conditional PatchGAN
    G:  gan pair.g(D(cat(y, out))) + l1 |out - x|_1              (mean over pixels)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.losses import LOSSES
from gankit.tasks.phases_common import frozen, stats
from gankit.tasks.recon.physics import data_consistency
from gankit.util import full

STATS = ("loss_d", "loss_g", "adv_g", "l1", "d_real", "d_fake")


@dataclass(frozen=True)
class Objective:
    gan: float = 1.0
    l1: float = 100.0
    residual: bool = True
    dc: bool = False  # MRI with recon.data_consistency
    loss: str = "ns"

    @property
    def pair(self):
        return LOSSES[self.loss]


def refine(G, y: Tensor, residual: bool) -> Tensor:
    """G's estimate from the model-space classical reconstruction y (B, 1, N, N), before any DC."""
    return y + G(y) if residual else G(y)


def consistent(out: Tensor, kspace: Tensor, mask: Tensor) -> Tensor:
    """The model-space image `out` with its k-space replaced by the measurement on the mask (real part)."""
    return data_consistency((out + 1) * 0.5, kspace, mask).real * 2 - 1


def _judge(D, y: Tensor, img: Tensor) -> Tensor:
    return full(D(torch.cat([y, img], 1)).flatten(1))  # (B, patches)


def recon_phase(st, y: Tensor, x: Tensor, kspace: Tensor | None = None) -> Tensor:
    obj, D = st.obj, st.nets["D"]
    pair = obj.pair
    out = refine(st.fwd["G"], y, obj.residual)
    if obj.dc:
        out = consistent(out, kspace, st.data.mask)
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
