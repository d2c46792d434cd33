"""Generated data: the 2-D mode-collapse benchmarks and random images for smoke runs.

`ring8`: 8 Gaussians (std 0.02) evenly spaced on a circle of radius 2; `grid25`: 25 Gaussians
(std 0.05) on the 5x5 grid {-4, -2, 0, 2, 4}^2. These are the settings of the Unrolled GAN
(Metz et al. 2017) and VEEGAN (Srivastava et al. 2017) papers. The label of a point is the
index of its mode, so the same data serves conditional models.
"""

from __future__ import annotations

import math

import torch

from gankit.data.dataset import Dataset
from gankit.errors import GankitError

TOY_N = 50_000  # points drawn per toy dataset; fixed seed, so every run sees the same data


def toy_modes(name: str) -> tuple[torch.Tensor, float]:
    """(mode centres (K, 2), per-axis std) of a toy distribution."""
    if name == "ring8":
        a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * a.cos(), 2 * a.sin()], 1).float(), 0.02
    if name == "grid25":
        g = torch.arange(-4, 5, 2, dtype=torch.float32)
        return torch.cartesian_prod(g, g), 0.05
    raise GankitError(f"unknown toy distribution {name!r}; choose ring8 or grid25")


def load_toy(name: str, n: int = TOY_N, seed: int = 0) -> Dataset:
    centres, std = toy_modes(name)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(len(centres), (n,), generator=g)
    x = centres[y] + std * torch.randn(n, 2, generator=g)
    bound = float(centres.abs().max()) + 5 * std
    return Dataset(x, y, name, kind="points", scale=bound * 1.1,
                   classes=[f"mode{i}" for i in range(len(centres))])


def load_fake(spec: str, name: str) -> Dataset:
    """`fake[:CxHxW[:N]]`: N uniform random uint8 images (default 1x28x28, 1024) with 10 classes."""
    parts = spec.split(":")[1:]
    try:
        c, h, w = (int(v) for v in parts[0].lower().split("x")) if parts and parts[0] else (1, 28, 28)
        n = int(parts[1]) if len(parts) > 1 else 1024
        if len(parts) > 2 or c not in (1, 3) or min(h, w) < 1 or n < 1:
            raise ValueError
    except ValueError:
        raise GankitError(f"data source {spec!r}: expected fake[:CxHxW[:N]] with C = 1 or 3, "
                          "e.g. fake:3x32x32:256") from None
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    return Dataset(x, y, name, classes=[str(i) for i in range(10)])
