"""GAN losses as pure functions of discriminator logits.

Each takes the logits D assigns to real and/or fake examples, shape (B,), and returns a scalar.
sigma is the logistic sigmoid; log sigma(l) = -softplus(-l) and log(1 - sigma(l)) = -softplus(l),
which stay finite for any logit (BCE on probabilities does not).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def d_bce(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator BCE: -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))]  (Goodfellow et al. 2014)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: -E[log sigma(D(G(z)))] = E[softplus(-D(G(z)))]."""
    return F.softplus(-fake_logits).mean()


def g_minimax(fake_logits: Tensor) -> Tensor:
    """Saturating (minimax) generator loss: E[log(1 - sigma(D(G(z))))] = -E[softplus(D(G(z)))]."""
    return -F.softplus(fake_logits).mean()


# name a user types -> (D loss, G loss)
LOSSES = {
    "ns": (d_bce, g_nonsaturating),
    "minimax": (d_bce, g_minimax),
}
