"""The frame-interpolation task's maths: G on (t-1, t+1) predicts t; a temporal D judges triplets.

    x      = cat(prev, next)                      (B, 2C, H, W)
    pred   = (prev + next) / 2 + G(x)             (interpolate.residual)  or  G(x)

  with interpolate.flow (`guide.py`), G also sees both neighbours warped halfway by Farneback
  flow and fuses them, as RIFE's fusion mask (Huang et al. 2022):
    x      = cat(prev, next, w_prev, w_next)      (B, 4C, H, W)
    r, m   = G(x)                                 (B, C, H, W) and (B, 1, H, W), both tanh
    M      = (1 + m) / 2                          per pixel, how much to trust w_prev over w_next
    pred   = M w_prev + (1 - M) w_next + r        G's last layer starts at zero: M = 1/2, r = 0,
                                                  so training starts from the classical flow warp
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
from gankit.tasks.phases_common import frozen, stats
from gankit.util import full

STATS = ("loss_d", "loss_g", "gan_g", "l1", "d_real", "d_fake")


@dataclass(frozen=True)
class Objective:
    gan: float = 1.0
    l1: float = 100.0
    residual: bool = True


def predict(G, prev: Tensor, next_: Tensor, residual: bool, warps: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """The middle frame in model space ([-1, 1]) from its two neighbours, and with flow guidance
    from the two neighbours warped halfway (`guide.py`), fused by G's mask."""
    if warps is None:
        out = G(torch.cat([prev, next_], 1))
        return 0.5 * (prev + next_) + out if residual else out
    out = G(torch.cat([prev, next_, *warps], 1))  # (B, C + 1, H, W)
    r, m = out[:, :-1], out[:, -1:]
    trust = 0.5 * (1.0 + m)  # in [0, 1]: the weight of the warped previous frame
    return trust * warps[0] + (1.0 - trust) * warps[1] + r


def _judge(D, prev: Tensor, mid: Tensor, next_: Tensor) -> Tensor:
    return full(D(torch.cat([prev, mid, next_], 1)).flatten(1))  # (B, patches)


def interpolate_phase(st, prev: Tensor, mid: Tensor, next_: Tensor, warps: tuple[Tensor, Tensor] | None) -> Tensor:
    obj, D = st.obj, st.nets["D"]
    pred = predict(st.fwd["G"], prev, next_, obj.residual, warps)
    real_l = _judge(st.fwd["D"], prev, mid, next_)
    fake_l = _judge(st.fwd["D"], prev, pred.detach(), next_)
    loss_d = 0.5 * d_bce(real_l, fake_l)  # halved, as pix2pix
    st.update("D", loss_d)
    with frozen(D):
        gan = g_nonsaturating(_judge(D, prev, pred, next_))
        l1 = (pred - mid).abs().mean()
        loss_g = obj.gan * gan + obj.l1 * l1
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, gan_g=gan, l1=l1,
                     d_real=torch.sigmoid(real_l).mean(), d_fake=torch.sigmoid(fake_l).mean())
