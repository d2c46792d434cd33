"""One training step over tensors already on the device: a D update, then a G update.

No host synchronisation happens here: the step returns its scalars as one device tensor that
the caller accumulates and reads every K steps. Randomness comes in as arguments (`z`) or from
torch's generator of the device (dropout), both owned and saved by the run.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

# Order of the scalars in the tensor `gan_step` returns.
STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake")


def gan_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             x_real: Tensor, z: Tensor, d_loss: Callable[[Tensor, Tensor], Tensor],
             g_loss: Callable[[Tensor], Tensor]) -> Tensor:
    """Update D on (x_real, G(z)), then G on D's verdict of the same G(z). Returns STAT_NAMES."""
    # 1. One generator forward, used by both phases.
    x_fake = G(z)  # (B, C, H, W)

    # 2. D phase: real up, fake down. detach() keeps G out of D's backward pass.
    real_logits = D(x_real)  # (B,)
    fake_logits = D(x_fake.detach())  # (B,)
    loss_d = d_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # 3. G phase: the updated D judges the same fakes. D's weights are frozen so backward
    #    computes gradients for G only.
    D.requires_grad_(False)
    loss_g = g_loss(D(x_fake))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)

    # 4. Scalars for the log, still on the device. Accuracy: logit > 0 means "real".
    with torch.no_grad():
        return torch.stack([
            loss_d.detach(), loss_g.detach(),
            torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(),
            (real_logits > 0).float().mean(), (fake_logits < 0).float().mean(),
        ])
