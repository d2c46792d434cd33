"""DiffAugment: differentiable augmentation of every image D sees (Zhao et al. 2020).

The same random transforms are applied to real and fake batches before D, and every op is
differentiable w.r.t. the images, so G's gradient passes through the augmentation. Images are
(B, C, H, W) in [-1, 1]. All randomness comes from the caller's generator, so a run is
reproducible from its generator state.
"""

from __future__ import annotations

import torch
from torch import Tensor

TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the image side
CUTOUT_RATIO = 1 / 2  # side of the erased square, as a fraction of the image side


def _rand(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) per sample, shape (B, 1, 1, 1), on x's device and dtype."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """n integers uniform in [low, high], inclusive, on x's device."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=x.device)


def color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Per-sample random brightness, saturation and contrast."""
    x = x + (_rand(x, generator) - 0.5)  # brightness: x + b, b ~ U[-0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W) grey value of each pixel
    x = (x - mean) * (_rand(x, generator) * 2) + mean  # saturation: s ~ U[0, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1) mean of each image
    x = (x - mean) * (_rand(x, generator) + 0.5) + mean  # contrast: c ~ U[0.5, 1.5)
    return x


def translation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Shift each sample by an integer (dy, dx), |d| <= side/8 (rounded), filling with zeros."""
    B, C, H, W = x.shape
    sh, sw = int(H * TRANSLATION_RATIO + 0.5), int(W * TRANSLATION_RATIO + 0.5)
    dy = _randint(-sh, sh, B, x, generator)  # (B,)
    dx = _randint(-sw, sw, B, x, generator)  # (B,)
    # out[b, :, i, j] = x[b, :, i - dy, j - dx], read from x padded by (sh, sw) zeros
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))  # (B, C, H + 2sh, W + 2sw)
    rows = torch.arange(H, device=x.device)[None, :] - dy[:, None] + sh  # (B, H)
    cols = torch.arange(W, device=x.device)[None, :] - dx[:, None] + sw  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]  # (B, 1, 1)
    out = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)  # (B, C, H, W)


def cutout(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Zero one (H/2, W/2) square per sample at a random centre; it is clipped at the borders."""
    B, _, H, W = x.shape
    ch, cw = int(H * CUTOUT_RATIO + 0.5), int(W * CUTOUT_RATIO + 0.5)
    # The centre may sit anywhere on [0, side], so the square can hang off any edge.
    top = _randint(0, H, B, x, generator) - ch // 2  # (B,)
    left = _randint(0, W, B, x, generator) - cw // 2  # (B,)
    i = torch.arange(H, device=x.device)[None, :]  # (1, H)
    j = torch.arange(W, device=x.device)[None, :]  # (1, W)
    in_rows = (i >= top[:, None]) & (i < top[:, None] + ch)  # (B, H)
    in_cols = (j >= left[:, None]) & (j < left[:, None] + cw)  # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (B, H, W)
    return x * keep[:, None].to(x.dtype)  # (B, C, H, W)


# name a user types -> transform; diff_augment applies them in this order
AUGMENTS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Apply the comma-separated DiffAugment policy to x (B, C, H, W), in the order of AUGMENTS.

    e.g. policy="color,translation,cutout"; "" returns x unchanged.
    """
    names = {n.strip() for n in policy.split(",") if n.strip()}
    unknown = sorted(names - AUGMENTS.keys())
    if unknown:
        raise ValueError(
            f"unknown DiffAugment policy {', '.join(map(repr, unknown))} in {policy!r}; "
            f"valid: {', '.join(AUGMENTS)}"
        )
    if names and x.dim() != 4:
        raise ValueError(f"DiffAugment needs images (B, C, H, W), got shape {tuple(x.shape)}")
    for name, fn in AUGMENTS.items():
        if name in names:
            x = fn(x, generator)
    return x
