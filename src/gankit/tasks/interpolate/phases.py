"""The frame-interpolation task's maths: G on (t-1, t+1) predicts t; a temporal D judges triplets.

    x      = cat(prev, next)                                     (B, 2C, H, W)
    pred   = (prev + next) / 2 + G(x)    (interpolate.residual)  or  G(x)
    D:  1/2 [BCE(D(prev, mid, next), 1) + BCE(D(prev, pred, next), 0)]   a PatchGAN over the
        triplet concatenated along channels: it judges motion, not single frames
    G:  gan * BCE(D(prev, pred, next), 1) + l1 * |pred - mid|_1          (pix2pix's objective,
        conditioned on the neighbours)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.losses import d_bce, g_nonsaturating

STATS = ("loss_d", "loss_g", "gan_g", "l1", "d_real", "d_fake")


@dataclass(frozen=True)
class Objective:
    gan: float = 1.0
    l1: float = 100.0
    residual: bool = True


def predict(G, prev: Tensor, next_: Tensor, residual: bool) -> Tensor:
    """The middle frame in model space ([-1, 1]) from its two neighbours."""
    out = G(torch.cat([prev, next_], 1))
    return 0.5 * (prev + next_) + out if residual else out


def _judge(D, prev: Tensor, mid: Tensor, next_: Tensor) -> Tensor:
    return D(torch.cat([prev, mid, next_], 1)).flatten(1).float()  # (B, patches)


def interpolate_phase(st, prev: Tensor, mid: Tensor, next_: Tensor) -> Tensor:
    obj, D = st.obj, st.nets["D"]
    pred = predict(st.fwd["G"], prev, next_, obj.residual)
    real_l = _judge(st.fwd["D"], prev, mid, next_)
    fake_l = _judge(st.fwd["D"], prev, pred.detach(), next_)
    loss_d = 0.5 * d_bce(real_l, fake_l)  # halved, as pix2pix
    st.update("D", loss_d)
    D.requires_grad_(False)
    gan = g_nonsaturating(_judge(D, prev, pred, next_))
    l1 = (pred - mid).abs().mean()
    loss_g = obj.gan * gan + obj.l1 * l1
    st.update("G", loss_g)
    D.requires_grad_(True)
    with torch.no_grad():
        return torch.stack([loss_d.detach(), loss_g.detach(), gan.detach(), l1.detach(),
                            torch.sigmoid(real_l).mean(), torch.sigmoid(fake_l).mean()])
