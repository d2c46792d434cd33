"""The noise models the denoising task trains and is scored on, applied to uint8 images.

A noisy image is what a camera or scanner writes: the clean image plus noise, rounded and
clipped to 0..255 (uint8), so a run trains on the same kind of file it is later given, and the
classical baselines see exactly the bytes the GAN sees.

    gaussian:S     y = clip(round(x + S n)),  n ~ N(0, 1) per pixel and channel (S on the 0-255 scale)
    gaussian:A-B   as above with S ~ U[A, B] drawn per image (a "blind" denoiser for a range of levels)
    poisson:P      y = clip(round(255 Poisson(P x / 255) / P)): shot noise with P photons expected at
                   white, so the std at grey level x is sqrt(255 x / P) (P = 30: ~41 at mid-grey)
"""

from __future__ import annotations

import torch

from gankit.tasks.denoise.config import Noise, parse_noise

__all__ = ["Noise", "corrupt", "parse_noise"]


def corrupt(x: torch.Tensor, noise: Noise | str, gen: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) clean images -> uint8 noisy images of `noise`, drawn from `gen`."""
    noise = parse_noise(noise) if isinstance(noise, str) else noise
    v = x.to(torch.get_default_dtype())
    if noise.kind == "gaussian":
        std = torch.rand(len(x), 1, 1, 1, generator=gen, device=x.device, dtype=v.dtype)  # (N, 1, 1, 1)
        std = noise.lo + (noise.hi - noise.lo) * std
        y = v + std * torch.randn(v.shape, generator=gen, device=x.device, dtype=v.dtype)
    else:
        y = torch.poisson(v * (noise.lo / 255.0), generator=gen) * (255.0 / noise.lo)
    return y.round().clamp(0, 255).to(torch.uint8)
