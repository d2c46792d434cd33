"""The inpainting task's maths, in model space ([-1, 1]); m is the mask, 1 where a pixel is missing.

    x_in   = cat(x (1 - m), m)                     (B, C + 1, H, W): the hole zeroed, the mask a channel
    out    = G(x_in)                               (B, C, H, W), tanh
    comp   = m out + (1 - m) x                     the completed image: known pixels are x's own
    D:  pair.d(D(cat(x, m)), D(cat(comp, m)))       an SN-PatchGAN over the completed image and the
                                                   mask (DeepFill v2), one logit per patch
    G:  gan pair.g(D(cat(comp, m)))
        + l1_hole  |out - x|_1 over the hole        (mean over hole pixels and channels)
        + l1_valid |out - x|_1 over the known pixels (G's raw output there is discarded by the
                                                   composite; the term keeps it consistent with
                                                   the image, so the hole's border has no seam)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.tasks.phases_common import LossPair, frozen, stats
from gankit.util import full

STATS = ("loss_d", "loss_g", "adv_g", "l1_hole", "l1_valid", "d_real", "d_fake")


@dataclass(frozen=True)
class Objective(LossPair):
    gan: float = 1.0
    l1_hole: float = 100.0
    l1_valid: float = 10.0
    loss: str = "hinge"


def fill(G, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(G's raw output, the composite) for model-space x (B, C, H, W) and a bool mask (B, 1, H, W)."""
    m = mask.to(x.dtype)
    out = G(torch.cat([x * (1.0 - m), m], 1))
    return out, torch.where(mask, out, x)


def _judge(D, img: Tensor, m: Tensor) -> Tensor:
    return full(D(torch.cat([img, m], 1)).flatten(1))  # (B, patches)


def _masked_l1(a: Tensor, b: Tensor, w: Tensor) -> Tensor:
    """Mean |a - b| over the pixels where w = 1 (and every channel)."""
    return ((a - b).abs() * w).sum() / (w.sum() * a.shape[1]).clamp_min(1.0)


def inpaint_phase(st, x: Tensor, mask: Tensor) -> Tensor:
    obj, D = st.obj, st.nets["D"]
    pair = obj.pair
    m = mask.to(x.dtype)
    out, comp = fill(st.fwd["G"], x, mask)
    real_l = _judge(st.fwd["D"], x, m)
    fake_l = _judge(st.fwd["D"], comp.detach(), m)
    loss_d = pair.d(real_l, fake_l)
    st.update("D", loss_d)
    with frozen(D):
        adv = pair.g(_judge(D, comp, m), real_l.detach() if pair.g_needs_real else None)
        l1_hole, l1_valid = _masked_l1(out, x, m), _masked_l1(out, x, 1.0 - m)
        loss_g = obj.gan * adv + obj.l1_hole * l1_hole + obj.l1_valid * l1_valid
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, adv_g=adv, l1_hole=l1_hole, l1_valid=l1_valid,
                     d_real=torch.sigmoid(real_l).mean(), d_fake=torch.sigmoid(fake_l).mean())
