"""The translation task's maths: pix2pix's and CycleGAN's updates over tensors on the device.

Adversarial terms on PatchGAN logit maps (every patch is a sample), as in the papers' code:

    pix2pix  (train.loss ns)  D: 1/2 [BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)]     G: BCE(D(x, G(x)), 1)
    CycleGAN (train.loss ls)  D: 1/2 [(D(y) - 1)^2 + D(G(x))^2]                  G: (D(G(x)) - 1)^2

pix2pix's D judges the (input, output) pair concatenated along channels; G's loss adds
lambda * |G(x) - y|_1 (lambda = translate.l1, 100 in the paper). CycleGAN's G loss adds
lambda * (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1) (lambda = translate.cycle, 10) and
identity terms 0.5 * lambda * (|G_ab(b) - b|_1 + |G_ba(a) - a|_1), which need the two domains
to have the same channel count. Each D also judges fakes drawn from a pool of earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.losses import d_bce, d_least_squares, g_nonsaturating
from gankit.tasks.phases_common import frozen, stats
from gankit.util import full

# Order of the scalars in st.acc.
STATS = ("loss_d", "loss_g", "gan_g", "l1", "cycle", "idt", "d_real", "d_fake")


def _d_bce_half(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * d_bce(real, fake)  # pix2pix halves D's objective to slow D relative to G


def _g_ls(fake: Tensor, real: Tensor | None = None) -> Tensor:
    return (fake - 1).square().mean()  # CycleGAN's MSE(D(G(x)), 1)


ADVERSARIAL = {"ns": (_d_bce_half, g_nonsaturating), "ls": (d_least_squares, _g_ls)}


@dataclass(frozen=True)
class Objective:
    d_loss: object
    g_loss: object
    gan: float = 1.0  # weight of G's adversarial term
    l1: float = 100.0
    cycle: float = 10.0
    identity: float = 0.0  # already x cycle; 0 when the domains' channels differ
    cyclegan: bool = False


def _judge(D, x: Tensor) -> Tensor:
    return full(D(x).flatten(1))  # (B, patches)


def pix2pix_phase(st, x: Tensor, y: Tensor) -> Tensor:
    """One D update and one G update on the pair (x, y); returns the STATS tensor."""
    obj, G, D = st.obj, st.fwd["G"], st.nets["D"]
    fake = G(x)  # (B, C_out, H, W)
    # 1. D: real pairs up, generated pairs down (its own forwards: BatchNorm sees each batch alone).
    real_l = _judge(st.fwd["D"], torch.cat([x, y], 1))
    fake_l = _judge(st.fwd["D"], torch.cat([x, fake.detach()], 1))
    loss_d = obj.d_loss(real_l, fake_l)
    st.update("D", loss_d)
    # 2. G: fool the updated D, stay close to the target in L1.
    with frozen(D):
        gan = obj.g_loss(_judge(D, torch.cat([x, fake], 1)))
        l1 = (fake - y).abs().mean()
        loss_g = obj.gan * gan + obj.l1 * l1
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, gan_g=gan, l1=l1,
                     d_real=torch.sigmoid(real_l).mean(), d_fake=torch.sigmoid(fake_l).mean())


def cyclegan_phase(st, a: Tensor, b: Tensor) -> Tensor:
    """One G update (both generators) then one D update (both discriminators), as CycleGAN does;
    returns the STATS tensor."""
    obj, G_ab, G_ba = st.obj, st.fwd["G_ab"], st.fwd["G_ba"]
    D_a, D_b = st.nets["D_a"], st.nets["D_b"]
    # 1. G: translations that fool the Ds and come back to where they started.
    with frozen(D_a, D_b):
        fake_b, fake_a = G_ab(a), G_ba(b)  # (B, C_b, H, W), (B, C_a, H, W)
        gan = obj.g_loss(_judge(D_b, fake_b)) + obj.g_loss(_judge(D_a, fake_a))
        cycle = (G_ba(fake_b) - a).abs().mean() + (G_ab(fake_a) - b).abs().mean()
        idt = cycle.new_zeros(())
        if obj.identity:  # G_ab should leave an image already in B alone (and G_ba one in A)
            idt = (G_ab(b) - b).abs().mean() + (G_ba(a) - a).abs().mean()
        loss_g = obj.gan * gan + obj.cycle * cycle + obj.identity * idt
        st.update("G", loss_g)
    # 2. D: real up; the fakes of this step, or earlier ones from the pools, down.
    old_b, old_a = st.extra["pool_b"].query(fake_b.detach()), st.extra["pool_a"].query(fake_a.detach())
    real_b_l, fake_b_l = _judge(st.fwd["D_b"], b), _judge(st.fwd["D_b"], old_b)
    real_a_l, fake_a_l = _judge(st.fwd["D_a"], a), _judge(st.fwd["D_a"], old_a)
    loss_d = obj.d_loss(real_b_l, fake_b_l) + obj.d_loss(real_a_l, fake_a_l)
    st.update("D", loss_d)
    with torch.no_grad():
        d_real = 0.5 * (torch.sigmoid(real_a_l).mean() + torch.sigmoid(real_b_l).mean())
        d_fake = 0.5 * (torch.sigmoid(fake_a_l).mean() + torch.sigmoid(fake_b_l).mean())
        return stats(STATS, loss_d=loss_d, loss_g=loss_g, gan_g=gan, cycle=cycle, idt=idt, d_real=d_real,
                     d_fake=d_fake)
