"""augment-eval's classifier, the same for every arm: `classical_augment` (shift, rotation and
elastic distortion, Simard et al. 2003), `small_cnn`, `train_classifier` with one fixed recipe,
and its test `accuracy`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.apps.augment_eval.protocol import Recipe
from gankit.util import eval_mode


@dataclass(frozen=True)
class Classical:
    """Classical augmentation, every op applied to every image with a random magnitude."""

    shift: float = 2.0  # px: translation uniform in [-shift, shift] on each axis
    rotate: float = 10.0  # degrees: rotation uniform in [-rotate, rotate] about the centre
    alpha: float = 34.0  # px: elastic displacement scale (Simard et al. 2003's alpha for MNIST)
    sigma: float = 4.0  # px: std of the Gaussian that smooths the U[-1, 1] displacement fields


def _gauss_smooth(d: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 2, H, W) fields, reflect-padded, truncated at 3 sigma."""
    if sigma <= 0:
        return d
    H, W = d.shape[-2:]
    r = max(1, min(int(3 * sigma + 0.5), H - 1, W - 1))
    t = torch.arange(-r, r + 1, dtype=d.dtype, device=d.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = d.shape[1]
    d = F.conv2d(F.pad(d, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(d, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def classical_augment(x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      params: Classical = Classical()) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random shift, rotation and elastic distortion of float images (B, C, H, W) in [-1, 1]
    (-1 = black, also what enters at the borders); one bilinear resampling. Labels `y` are
    returned unchanged (these transforms keep a digit's class). Randomness from `generator`
    (on x's device)."""
    B, C, H, W = x.shape
    dev, dt = x.device, x.dtype
    u = torch.rand(B, 3, generator=generator, device=dev, dtype=dt) * 2 - 1  # (B, 3) in [-1, 1)
    angle = u[:, 0] * math.radians(params.rotate)
    tx, ty = u[:, 1] * params.shift * 2 / W, u[:, 2] * params.shift * 2 / H  # px -> normalised coords
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output (x, y) reads input at R (x, y) + t, in normalised coordinates (square images: no aspect fix)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)  # (B, H, W, 2)
    if params.alpha > 0:
        d = torch.rand(B, 2, H, W, generator=generator, device=dev, dtype=dt) * 2 - 1
        d = _gauss_smooth(d, params.sigma) * params.alpha  # (B, 2, H, W) displacement in px (dx, dy)
        grid = grid + torch.stack([d[:, 0] * 2 / W, d[:, 1] * 2 / H], -1)
    out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    return out, y


def small_cnn(in_channels: int, n_classes: int, resolution: int, width: int = 16):
    """The classifier of every arm: two conv3x3-ReLU-maxpool2 stages (w, 2w channels), dropout 0.3,
    Linear(2w x (H/4)^2 -> 128)-ReLU, Linear(128 -> K). Float images in [-1, 1]. Small on purpose:
    ~1 MFLOP per 28 px image, so 5 arms x 3 ratios x 3 seeds fit a 2-core CPU budget."""
    w, side = width, resolution // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * w * side * side, 128), nn.ReLU(inplace=True),
        nn.Linear(128, n_classes))


def train_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, recipe: Recipe, seed: int,
                     augment: torch.Tensor | None = None, params: Classical = Classical()):
    """Train `small_cnn` on uint8 images `x` (N, C, H, W), labels `y`, with `recipe`; `augment`
    (bool (N,)) marks the examples that get `classical_augment` each time they are drawn.
    Deterministic for a seed on CPU; the caller's global RNG state is kept."""
    device = x.device
    C, H, W = x.shape[1:]
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # init and dropout draw from the global RNG
        torch.manual_seed(seed)
        g = torch.Generator(device=device).manual_seed(seed)
        net = small_cnn(C, n_classes, H, recipe.width).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps)
        net.train()
        for _ in range(recipe.steps):
            idx = torch.randint(len(x), (recipe.batch,), generator=g, device=device)
            xb, yb = x[idx].float().div_(127.5).sub_(1.0), y[idx]
            if augment is not None:
                m = augment[idx]
                if bool(m.any()):
                    xb[m] = classical_augment(xb[m], None, g, params)[0]
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def accuracy(net, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    correct = 0
    with torch.no_grad(), eval_mode(net):  # the net's own mode back afterwards
        for i in range(0, len(x), batch):
            pred = net(x[i:i + batch].float().div_(127.5).sub_(1.0)).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return correct / len(x)
