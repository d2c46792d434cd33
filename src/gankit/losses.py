"""GAN losses as pure functions of discriminator logits.

D losses take (real_logits, fake_logits); G losses take (fake_logits, real_logits), where only the
relativistic loss reads real_logits. All logits are (B,) and every loss returns a scalar.
sigma is the logistic sigmoid; log sigma(l) = -softplus(-l) and log(1 - sigma(l)) = -softplus(l),
which stay finite for any logit (BCE on probabilities does not).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch.nn.functional as F
from torch import Tensor


# -- the original GAN (Goodfellow et al. 2014) ----------------------------------------------

def d_bce(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """-E[t log sigma(D(x)) + (1-t) log(1 - sigma(D(x)))] - E[log(1 - sigma(D(G(z))))].

    t = real_target is 1, or 1 - s with one-sided label smoothing (Salimans et al. 2016)."""
    real = real_target * F.softplus(-real_logits) + (1 - real_target) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[log sigma(D(G(z)))] = E[softplus(-D(G(z)))]: strong gradients while D rejects fakes."""
    return F.softplus(-fake_logits).mean()


def g_minimax(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """E[log(1 - sigma(D(G(z))))] = -E[softplus(D(G(z)))]: the saturating form of the minimax game."""
    return -F.softplus(fake_logits).mean()


# -- least squares (Mao et al. 2017, a = 0, b = c = 1) --------------------------------------

def d_least_squares(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * (real_logits - 1).square().mean() + 0.5 * fake_logits.square().mean()


def g_least_squares(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_logits - 1).square().mean()


# -- hinge (Lim & Ye 2017; Miyato et al. 2018) ----------------------------------------------

def d_hinge(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[D(G(z))]."""
    return -fake_logits.mean()


# -- Wasserstein (Arjovsky et al. 2017): D is a critic, pair it with clipping or a penalty ----

def d_wasserstein(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]: minus the critic's estimate of the Wasserstein-1 distance."""
    return fake_logits.mean() - real_logits.mean()


def g_wasserstein(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[D(G(z))]."""
    return -fake_logits.mean()


# -- relativistic average BCE (Jolicoeur-Martineau 2019) -----------------------------------

def d_relativistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log sigma(D(x) - E D(G(z)))] - E[log(1 - sigma(D(G(z)) - E D(x)))]."""
    return (F.softplus(-(real_logits - fake_logits.mean())).mean()
            + F.softplus(fake_logits - real_logits.mean()).mean())


def g_relativistic(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[log sigma(D(G(z)) - E D(x))] - E[log(1 - sigma(D(x) - E D(G(z))))]: the D loss, roles swapped."""
    if real_logits is None:
        raise ValueError("the relativistic G loss needs the real logits")
    return d_relativistic(fake_logits, real_logits)


# -- relativistic pairing (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024) -----------------

def d_relativistic_pairing(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[softplus(-(D(x) - D(G(z))))] = -E[log sigma(D(x) - D(G(z)))], each real paired with one fake."""
    return F.softplus(-(real_logits - fake_logits)).mean()


def g_relativistic_pairing(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """E[softplus(-(D(G(z)) - D(x)))]: the D loss with the roles swapped."""
    if real_logits is None:
        raise ValueError("the relativistic pairing G loss needs the real logits")
    return F.softplus(-(fake_logits - real_logits)).mean()


class GANLoss(NamedTuple):
    d: Callable[..., Tensor]  # (real_logits, fake_logits) -> loss
    g: Callable[..., Tensor]  # (fake_logits, real_logits) -> loss
    g_needs_real: bool = False  # G's loss reads D(x): the G phase must score a real batch too
    bce: bool = False  # D's loss is BCE on a real target: one-sided label smoothing applies


# name a user types (train.loss) -> the pair
LOSSES: dict[str, GANLoss] = {
    "ns": GANLoss(d_bce, g_nonsaturating, bce=True),
    "minimax": GANLoss(d_bce, g_minimax, bce=True),
    "ls": GANLoss(d_least_squares, g_least_squares),
    "hinge": GANLoss(d_hinge, g_hinge),
    "rpgan": GANLoss(d_relativistic_pairing, g_relativistic_pairing, g_needs_real=True),
    "wasserstein": GANLoss(d_wasserstein, g_wasserstein),
    "ragan": GANLoss(d_relativistic, g_relativistic, g_needs_real=True),
}
