"""Differentiable augmentation of every image D sees: DiffAugment (Zhao et al. 2020,
`diff_augment`) and ADA's pipeline (Karras et al. 2020, `ada_augment`).

The same random transforms are applied to real and fake batches before D, and every op is
differentiable w.r.t. the images, so G's gradient passes through the augmentation. Images are
(B, C, H, W) in [-1, 1]. All randomness comes from the caller's generator, so a run is
reproducible from its generator state. ADA's ops each apply with a probability p held in a
device tensor and never read back, so they run inside a captured CUDA graph.
"""

from __future__ import annotations

import math

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


# -- ADA: adaptive discriminator augmentation (Karras et al. 2020) ----------------------------
# The paper's "bgc" pipeline, its geometric and colour groups reduced to what is exact on a
# pixel grid, plus its cutout. Strengths are the paper's (stylegan2-ada-pytorch defaults).
ADA_XINT_MAX = 1 / 8  # integer translation: at most this fraction of the side, per axis
ADA_BRIGHTNESS_STD = 0.2  # brightness: x + b, b ~ N(0, 0.2^2)
ADA_CONTRAST_STD = 0.5 * math.log(2)  # contrast: c ~ lognormal(0, 0.5 ln 2), i.e. log2 c ~ N(0, 0.5^2)
ADA_SATURATION_STD = math.log(2)  # saturation: s ~ lognormal(0, ln 2), i.e. log2 s ~ N(0, 1)
ADA_CUTOUT_SIZE = 1 / 2  # cutout: a square of half the side, filled with 0 (mid-grey in [-1, 1])


def _where(mask: Tensor, aug: Tensor, x: Tensor) -> Tensor:
    """aug where the per-sample mask (B,) is set, x elsewhere (bit-exact x there)."""
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), aug, x)


def ada_mask(p: Tensor, n: int, generator: torch.Generator | None, device) -> Tensor:
    """(n,) bool: which samples one ADA augmentation applies to, each with probability p.

    The draw is made whatever p is (n uniforms from `generator`), so the random stream and the
    work done do not depend on p's value, and p may change inside a captured CUDA graph."""
    return torch.rand(n, generator=generator, device=device) < p


def _reflect(i: Tensor, n: int) -> Tensor:
    """Indices reflected into [0, n - 1] without repeating the edge (torch's 'reflect' padding)."""
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def ada_xflip(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror left-right."""
    return _where(ada_mask(p, x.shape[0], generator, x.device), x.flip(3), x)


def ada_rot90(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Rotate by k * 90 degrees, k uniform in 0..3 (k = 0 is a possible draw, as in the paper).
    Square images only: a non-square image is returned as it is (its random draws still made)."""
    B, _, H, W = x.shape
    mask = ada_mask(p, B, generator, x.device)
    k = _randint(0, 3, B, x, generator)  # (B,)
    if H != W:
        return x
    k = torch.where(mask, k, 0).view(B, 1, 1, 1)
    r1, r2, r3 = x.rot90(1, (2, 3)), x.flip(2, 3), x.rot90(3, (2, 3))
    return torch.where(k == 0, x, torch.where(k == 1, r1, torch.where(k == 2, r2, r3)))


def ada_translate(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Shift by an integer (dy, dx), |d| <= side/8 (rounded) per axis, reflect-padded as in the
    paper (no zero borders a D could use to spot the augmentation)."""
    B, C, H, W = x.shape
    mask = ada_mask(p, B, generator, x.device)
    sh, sw = int(H * ADA_XINT_MAX + 0.5), int(W * ADA_XINT_MAX + 0.5)
    dy = torch.where(mask, _randint(-sh, sh, B, x, generator), 0)  # (B,), 0: not applied
    dx = torch.where(mask, _randint(-sw, sw, B, x, generator), 0)  # (B,)
    # out[b, :, i, j] = x[b, :, reflect(i - dy), reflect(j - dx)]: a gather, differentiable in x
    rows = _reflect(torch.arange(H, device=x.device)[None, :] - dy[:, None], H)  # (B, H)
    cols = _reflect(torch.arange(W, device=x.device)[None, :] - dx[:, None], W)  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]  # (B, 1, 1)
    out = x.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)  # (B, C, H, W)


def ada_brightness(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add b ~ N(0, ADA_BRIGHTNESS_STD^2), one offset per sample."""
    mask = ada_mask(p, x.shape[0], generator, x.device)
    b = torch.randn(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)
    return _where(mask, x + b * ADA_BRIGHTNESS_STD, x)


def ada_contrast(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each image about its mean by c ~ lognormal(0, ADA_CONTRAST_STD)."""
    mask = ada_mask(p, x.shape[0], generator, x.device)
    c = torch.exp(torch.randn(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)
                  * ADA_CONTRAST_STD)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return _where(mask, (x - mean) * c + mean, x)


def ada_saturation(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each pixel's colour about its grey value by s ~ lognormal(0, ADA_SATURATION_STD).
    3-channel images only; others are returned as they are (its random draws still made)."""
    mask = ada_mask(p, x.shape[0], generator, x.device)
    s = torch.exp(torch.randn(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)
                  * ADA_SATURATION_STD)
    if x.shape[1] != 3:
        return x
    grey = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    return _where(mask, (x - grey) * s + grey, x)


def ada_cutout(x: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Zero (mid-grey) one square of half the side per sample, its centre uniform on the image,
    clipped at the borders (DiffAugment's `cutout`, whose square is the paper's size too)."""
    mask = ada_mask(p, x.shape[0], generator, x.device)
    return _where(mask, cutout(x, generator), x)


# name -> augmentation; ada_augment applies them in this order (the paper's: geometric, colour, cutout)
ADA_OPS = {"xflip": ada_xflip, "rot90": ada_rot90, "translate": ada_translate, "brightness": ada_brightness,
           "contrast": ada_contrast, "saturation": ada_saturation, "cutout": ada_cutout}


def ada_augment(x: Tensor, p: Tensor, generator: torch.Generator | None = None,
                ops: tuple[str, ...] | None = None) -> Tensor:
    """ADA's augmentation of x (B, C, H, W) in [-1, 1] at probability p (Karras et al. 2020).

    Each augmentation of ADA_OPS is applied, in that order, to each sample independently with
    probability p (a 0-dim float tensor on x's device, so it can change inside a captured CUDA
    graph; no value is read back): x-flip; rotation by k * 90 degrees, k uniform in 0..3;
    integer translation by up to 1/8 of the side per axis, reflect padding; brightness
    + N(0, 0.2^2); contrast x lognormal(0, 0.5 ln 2) about the image mean; saturation
    x lognormal(0, ln 2) about the grey value (3 channels only); cutout of a half-side square
    at a uniform centre, filled with 0 (mid-grey). Every op is differentiable w.r.t. x (flips,
    gathers and affine maps), so G's gradient passes through; all randomness comes from
    `generator` (the device's default generator when None), and the same number of draws is made
    whatever p is. p = 0 returns x bit-exactly (every op is a torch.where that keeps x).

    Why it does not leak (the paper's section 2.2): each op is applied with probability p < 1,
    so the augmented distribution is a mixture that still holds the clean images with weight
    (1 - p) per op; the ops' compositions are invertible in distribution, so the distribution of
    augmented reals determines that of the reals, and a G that matches augmented reals matches the
    reals rather than producing augmented images. That is exact only for p < 1; the paper reports
    that in practice, for its pipeline, p below about 0.8 (an approximate, empirical bound) does
    not leak, and that leaks (e.g. rotated or flipped generated images) become likely above it.
    gankit lets ADA move p up to reg.ada_max (default 1.0, as the paper does not cap p): watch
    ada_p in metrics.jsonl, and set reg.ada_max = 0.8 to stay where the paper found it safe.

    `ops` picks a subset of ADA_OPS by name (still in ADA_OPS's order); None: all.
    """
    if x.dim() != 4:
        raise ValueError(f"ADA needs images (B, C, H, W), got shape {tuple(x.shape)}")
    names = tuple(ADA_OPS) if ops is None else ops
    unknown = sorted(set(names) - ADA_OPS.keys())
    if unknown:
        raise ValueError(f"unknown ADA augmentation {', '.join(map(repr, unknown))}; valid: {', '.join(ADA_OPS)}")
    for name, fn in ADA_OPS.items():
        if name in names:
            x = fn(x, p, generator)
    return x


class AdaState:
    """ADA's augmentation probability p and the heuristic that adapts it (Karras et al. 2020).

    p is a 0-dim float32 tensor on the training device, updated in place, so a captured CUDA graph
    keeps reading the same tensor and nothing is read back. `update(real_logits)` takes D's
    logits on this update's augmented reals, r_t = E[sign(D(x_real))], and moves
    p <- clamp(p + sign(r_t - target) * batch / (kimg * 1000), 0, max_p), `batch` being the real
    images one update shows D: p can cross 0 -> 1 in `kimg` thousand real images. The paper accumulates the sign over 4 minibatches and adjusts
    once by the same per-image speed; adjusting every update by each minibatch's sign is the
    same drift in expectation, with steps 4 times smaller. With `adaptive` false, p stays put
    (a fixed augmentation probability) and r_t is still returned, for the logs.

    state_dict() -> {"p": tensor}; load_state_dict copies into p in place (a checkpoint is read
    on the CPU; captured graphs keep their tensor).
    """

    def __init__(self, p: float, device, batch: int, target: float = 0.6, kimg: float = 100.0,
                 max_p: float = 1.0, adaptive: bool = True):
        self.p = torch.tensor(p, dtype=torch.float32, device=device)
        self.batch, self.target, self.kimg, self.max_p, self.adaptive = batch, target, kimg, max_p, adaptive

    @torch.no_grad()
    def update(self, real_logits: Tensor) -> Tensor:
        """Move p by one update's r_t; returns r_t (0-dim, on the device)."""
        rt = real_logits.detach().float().sign().mean()
        if self.adaptive:
            step = torch.sign(rt - self.target) * (self.batch / (self.kimg * 1000))
            self.p.copy_((self.p + step).clamp(0.0, self.max_p))
        return rt

    def state_dict(self) -> dict:
        return {"p": self.p.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.p.copy_(state["p"])
