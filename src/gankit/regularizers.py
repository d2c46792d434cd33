"""Discriminator regularisers and the small schedules that go with them.

Penalties are pure functions of `(D, x)`: D is any callable `D(x, y) -> logits (B,)`, y may be
None. They return an unscaled scalar; the caller applies the weight (lambda, gamma/2) and decides
how often to run them (lazy regularisation). Nothing here owns an optimiser or calls backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

Discriminator = Callable[[Tensor, Tensor | None], Tensor]  # D(x, y) -> logits (B,)


def gradient_penalty(
    D: Discriminator,
    real: Tensor,
    fake: Tensor,
    y: Tensor | None = None,
    generator: torch.Generator | None = None,
    alpha: Tensor | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani et al. 2017).

    `alpha` (B, 1, ..., 1): the interpolation weights, when the caller drew them (gradient
    accumulation draws the whole batch's and passes each micro-batch its slice); else drawn here."""
    # One alpha per sample, broadcast over every non-batch dim: (B, 1, ..., 1). A per-pixel alpha
    # would put x_hat off the straight line between the real and the fake sample.
    if alpha is None:
        alpha = interpolation_weights(real.shape, real.device, real.dtype, generator)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # (B, ...)
    # Summing the logits gives each sample's own gradient as long as D treats samples
    # independently (no batch norm). create_graph: the penalty is trained through.
    (grads,) = torch.autograd.grad(D(x_hat, y).sum(), x_hat, create_graph=True)  # (B, ...)
    norm = grads.flatten(1).norm(2, dim=1)  # (B,) ||grad_x D(x_hat)||_2 over all non-batch dims
    return ((norm - 1) ** 2).mean()  # E[(||g|| - 1)^2]


def interpolation_weights(shape: torch.Size, device, dtype, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's alpha ~ U[0, 1), one per sample of a batch of `shape`: (B, 1, ..., 1)."""
    return torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=generator, device=device, dtype=dtype)


def r1_penalty(D: Discriminator, real: Tensor, y: Tensor | None = None) -> Tensor:
    """R1 penalty E[||grad_x D(x)||_2^2] at real data (Mescheder et al. 2018)."""
    x = real.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)  # (B, ...)
    return grads.flatten(1).pow(2).sum(dim=1).mean()  # E[||g||^2], squared norm per sample (B,)


def clip_weights_(D: nn.Module, c: float) -> None:
    """Clamp every parameter of D to [-c, c] in place (original WGAN, Arjovsky et al. 2017)."""
    if c <= 0:
        raise ValueError(f"weight clip c must be > 0, got {c}")
    with torch.no_grad():
        for p in D.parameters():
            p.clamp_(-c, c)


def instance_noise_std(step: int, start_std: float, decay_steps: int) -> float:
    """Instance-noise std: start_std at step 0, linearly down to 0 at decay_steps, 0 after."""
    if start_std == 0 or step >= decay_steps:
        return 0.0
    return start_std * (1 - max(step, 0) / decay_steps)  # sigma_t = sigma_0 (1 - t/T)


def smooth_real_target(smoothing: float) -> float:
    """One-sided label smoothing: the real target becomes 1 - smoothing, fakes stay 0 (Salimans et al. 2016)."""
    # Only the real side: a fake target above 0 would keep D's optimum high wherever G puts mass
    # and the data has none, so G would not be pushed off its bad samples.
    return 1.0 - smoothing
