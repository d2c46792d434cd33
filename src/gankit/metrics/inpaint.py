"""Inpainting (fill the missing pixels of an image from its known pixels): its classical
baselines and its scores in the hole, with their protocol.

    telea(images, masks, radius)          OpenCV's fast-marching inpainting (Telea 2004)
    navier_stokes(images, masks, radius)  OpenCV's Navier-Stokes inpainting (Bertalmio et al. 2001)
    biharmonic(images, masks)             scikit-image's biharmonic inpainting (Damelin & Hoang 2018)
    mean_fill(images, masks)              each hole filled with its image's mean known colour
    BASELINES                             {"telea", "navier-stokes", "biharmonic", "mean fill"} -> the above
    hole_scores(pred, target, masks)      {"psnr", "ssim", "l1", "psnr_full", "ssim_full"}: per image, then the mean

Images are uint8 (N, C, H, W), C 1 (grey) or 3 (RGB); masks are torch.bool (N, 1, H, W), True
where the pixel is missing (the hole), the same for every channel.

Baselines: each takes the damaged image and returns uint8 (N, C, H, W) whose known pixels are
bit-identical to the input's: the filled image is composited at the end,
    out = where(mask, filled, images).
The hole's content of the input is never used: it is set to 0 before OpenCV or scikit-image
sees the image, so the output does not depend on it (no leak of the answer).
  - `telea`: cv2.inpaint(..., radius, cv2.INPAINT_TELEA) per image (H x W or H x W x 3 uint8,
    mask 255 where missing). Fast marching from the hole's boundary inwards; each pixel is the
    weighted mean over the known (or already filled) pixels q within `radius` px of the
    first-order extrapolations I(q) + grad I(q) . (p - q), weights = direction x distance x
    level-set closeness. Each channel on its own, the same weights.
  - `navier_stokes`: cv2.inpaint(..., radius, cv2.INPAINT_NS): the smoothness (Laplacian) is
    transported along the isophotes into the hole, as vorticity in a 2-D incompressible flow;
    `radius` is the neighbourhood it starts from.
  - `biharmonic`: skimage.restoration.inpaint_biharmonic (channel_axis=-1 for colour) on
    float64 in [0, 1] = uint8 / 255: the hole is the solution of the discrete biharmonic
    equation (Laplacian of the Laplacian) u = 0 with the known pixels around it as boundary
    values. It reproduces any linear ramp exactly (a linear function is biharmonic). Back to
    uint8 by floor(255 u + 0.5) (rounded half up), clipped to 0..255.
  - `mean_fill`: every hole pixel of an image gets, per channel, the mean of that image's known
    pixels in that channel, rounded half up (exactly, in integers: (2 sum + n) // (2 n)).
An image with no known pixel has nothing to fill from: GankitError naming it. An image with an
empty hole is returned as it is.

Scores (`hole_scores`), on uint8 values as float64 on 0..255, all channels, per image then the
mean over images. With M the hole of an image (its masked pixels, times its C channels) and
|M| their number:
  - psnr = 10 log10(255^2 / MSE_M), MSE_M = sum_M (pred - target)^2 / |M|, floored at 1e-10
    (gankit.metrics.frames.MSE_FLOOR: an exact hole scores 148.13 dB).
  - l1 = sum_M |pred - target| / |M| / 255: on the 0..1 scale.
  - ssim = the SSIM map averaged over M: a hole-restricted SSIM. The map is Wang et al. 2004's,
    as gankit.metrics.frames (Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, L = 255,
    window means and biased variances,
        SSIM(x) = (2 mu_p mu_t + C1)(2 cov + C2) / ((mu_p^2 + mu_t^2 + C1)(var_p + var_t + C2)),
    C1 = (K1 L)^2, C2 = (K2 L)^2), but kept as a map with a value at every pixel: the image is
    padded by reflection by 5 px on each side and convolved 'valid' ('same' size). Hole-restricted
    because whole-image SSIM is dominated by the known pixels, which every baseline keeps
    exactly: it would score all methods near 1 and hide their differences in the hole. The
    window of a hole pixel still reaches 5 px beyond the hole, so errors within 5 px of the hole
    count (weighted by the Gaussian); errors farther away do not.
  - psnr_full, ssim_full: the whole image, for reference: PSNR over all pixels and channels
    (MSE floored alike) and SSIM over the valid window positions, as frames.frame_scores.
Images need sides of at least 11 px (the SSIM window) and a non-empty hole (GankitError naming
the first image without one). The images are scored `chunk` at a time to bound memory.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.frames import MSE_FLOOR, _check_pair, _psnr, _ssim
from gankit.metrics.sr import SSIM_WINDOW, _gaussian_window

INPAINT_PROTOCOL = ("uint8 (N, C, H, W), bool masks (N, 1, H, W) True = missing; baselines keep known pixels "
                    "bit-exactly and never see the hole (zeroed): telea / navier-stokes (cv2.inpaint, radius 3), "
                    "biharmonic (skimage, rounded half up), mean fill (per-channel known mean, rounded half up); "
                    "scores on 0..255 float64, all channels, per image then mean, over the hole: PSNR peak 255 "
                    "(MSE floored at 1e-10), L1 / 255, SSIM map (Gaussian 11 sigma 1.5 K1 0.01 K2 0.03 L 255, "
                    "reflect-padded 5 px) averaged over the hole; psnr_full, ssim_full (valid) over the whole image")

_PAD = SSIM_WINDOW // 2  # 5 px: reflection padding that gives the SSIM map the image's size


def _check_masked(images: Tensor, masks: Tensor, what: str) -> None:
    """images uint8 (N, 1 or 3, H, W), masks bool (N, 1, H, W) of the same N, H, W, or a one-line GankitError."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != torch.uint8:
        raise GankitError(f"{what} must be uint8 (N, 1 or 3, H, W) images; got {images.dtype} of shape "
                          f"{tuple(images.shape)}")
    if masks.ndim != 4 or masks.shape[1] != 1 or masks.dtype != torch.bool:
        raise GankitError(f"masks must be torch.bool (N, 1, H, W), True = missing; got {masks.dtype} of shape "
                          f"{tuple(masks.shape)}")
    N, _, H, W = images.shape
    if (masks.shape[0], *masks.shape[2:]) != (N, H, W):
        raise GankitError(f"masks {tuple(masks.shape)} do not match {what} {tuple(images.shape)}: "
                          f"expected ({N}, 1, {H}, {W})")


def _damaged(images: Tensor, masks: Tensor, what: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """Checked inputs as numpy: uint8 (N, H, W, C) images with the hole zeroed, bool (N, H, W) masks."""
    _check_masked(images, masks, what)
    full = masks.flatten(1).all(1)
    if bool(full.any()):
        i = int(full.nonzero()[0])
        raise GankitError(f"image {i} has no known pixel (its mask is all True): nothing to inpaint from")
    m = masks.cpu()
    x = torch.where(m, torch.zeros((), dtype=torch.uint8), images.cpu())  # the hole's content never leaves here
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), m[:, 0].numpy()


def _composite(images: Tensor, masks: Tensor, filled: np.ndarray) -> Tensor:
    """uint8 (N, C, H, W): `filled` (uint8 (N, H, W, C)) in the hole, the input elsewhere, bit for bit."""
    f = torch.from_numpy(np.ascontiguousarray(filled.transpose(0, 3, 1, 2))).to(images.device)
    return torch.where(masks.to(images.device), f, images)


def _check_radius(radius: float) -> None:
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise GankitError(f"the inpainting radius must be a positive number of pixels; got {radius!r}")


def _opencv(images: Tensor, masks: Tensor, radius: float, method: int) -> Tensor:
    import cv2  # imported on use: scoring needs no OpenCV

    _check_radius(radius)
    x, m = _damaged(images, masks)
    out = x.copy()
    for i in range(len(x)):
        if not m[i].any():
            continue
        src = x[i, ..., 0] if x.shape[-1] == 1 else x[i]  # OpenCV's H x W or H x W x 3
        hole = m[i].astype(np.uint8) * 255  # 8-bit, 255 = missing
        out[i] = cv2.inpaint(src, hole, float(radius), method).reshape(out.shape[1:])
    return _composite(images, masks, out)


def telea(images: Tensor, masks: Tensor, radius: float = 3) -> Tensor:
    """uint8 (N, C, H, W): OpenCV's Telea (fast marching) inpainting of the hole, known pixels kept."""
    import cv2

    return _opencv(images, masks, radius, cv2.INPAINT_TELEA)


def navier_stokes(images: Tensor, masks: Tensor, radius: float = 3) -> Tensor:
    """uint8 (N, C, H, W): OpenCV's Navier-Stokes inpainting of the hole, known pixels kept."""
    import cv2

    return _opencv(images, masks, radius, cv2.INPAINT_NS)


def biharmonic(images: Tensor, masks: Tensor) -> Tensor:
    """uint8 (N, C, H, W): scikit-image's biharmonic inpainting of the hole on [0, 1], rounded
    half up, known pixels kept."""
    from skimage.restoration import inpaint_biharmonic  # imported on use: scoring needs no scikit-image

    x, m = _damaged(images, masks)
    out = x.copy()
    for i in range(len(x)):
        if not m[i].any():
            continue
        u = x[i].astype(np.float64) / 255.0
        if u.shape[-1] == 1:
            f = inpaint_biharmonic(u[..., 0], m[i])[..., None]
        else:
            f = inpaint_biharmonic(u, m[i], channel_axis=-1)
        out[i] = np.clip(np.floor(255.0 * f + 0.5), 0, 255).astype(np.uint8)
    return _composite(images, masks, out)


def mean_fill(images: Tensor, masks: Tensor) -> Tensor:
    """uint8 (N, C, H, W): each hole filled with the per-channel mean of its image's known
    pixels, rounded half up (in integers), known pixels kept."""
    x, m = _damaged(images, masks)
    known = ~torch.from_numpy(m)[:, None]  # (N, 1, H, W)
    v = torch.from_numpy(x).permute(0, 3, 1, 2).long()  # (N, C, H, W)
    s = (v * known).sum((2, 3))  # (N, C): the sum of the known values
    n = known.sum((2, 3))  # (N, 1): how many known pixels
    mean = (2 * s + n) // (2 * n)  # floor(s / n + 1/2), exact
    filled = mean[:, None, None, :].expand(x.shape).to(torch.uint8).numpy()  # (N, H, W, C)
    return _composite(images, masks, filled)


BASELINES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "telea": telea, "navier-stokes": navier_stokes, "biharmonic": biharmonic, "mean fill": mean_fill}


def _ssim_map(a: Tensor, b: Tensor) -> Tensor:
    """(N, C, H, W) float64: the SSIM map of (N, C, H, W) float64 on 0..255, each channel on its
    own, reflect-padded by 5 px so that every pixel has a value."""
    N, C, H, W = a.shape
    a, b = a.reshape(N * C, 1, H, W), b.reshape(N * C, 1, H, W)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2  # (K1 L)^2, (K2 L)^2
    stack = F.pad(torch.cat([a, b, a * a, b * b, a * b]), (_PAD,) * 4, mode="reflect")
    # E_w[.] for a, b, a^2, b^2, ab, 'same' size: (5 N C, 1, H, W)
    m_a, m_b, m_aa, m_bb, m_ab = F.conv2d(stack, _gaussian_window().to(a.device)).chunk(5)
    var_a, var_b, cov = m_aa - m_a ** 2, m_bb - m_b ** 2, m_ab - m_a * m_b
    s = (2 * m_a * m_b + c1) * (2 * cov + c2) / ((m_a ** 2 + m_b ** 2 + c1) * (var_a + var_b + c2))
    return s.view(N, C, H, W)


def hole_scores(pred: Tensor, target: Tensor, masks: Tensor, chunk: int = 16) -> dict:
    """{"psnr", "ssim", "l1"} over the hole and {"psnr_full", "ssim_full"} over the whole image,
    of uint8 (N, C, H, W) inpainted images against the originals, masks bool (N, 1, H, W) True
    = missing: per image, then the mean over images (protocol in the module docstring)."""
    _check_pair(pred, target, "inpainted images", "target images")
    _check_masked(pred, masks, "inpainted images")
    H, W = pred.shape[-2:]
    if min(H, W) < SSIM_WINDOW:
        raise GankitError(f"images of {H} x {W} px are smaller than SSIM's {SSIM_WINDOW} x {SSIM_WINDOW} "
                          "window; use images with sides of at least 11 px")
    if len(pred) == 0:
        raise GankitError("no images to score: got an empty batch")
    empty = ~masks.flatten(1).any(1)
    if bool(empty.any()):
        i = int(empty.nonzero()[0])
        raise GankitError(f"image {i} has an empty hole (its mask is all False; {int(empty.sum())} such images): "
                          "hole scores need at least one missing pixel per image")
    C = pred.shape[1]
    total = dict.fromkeys(("psnr", "ssim", "l1", "psnr_full", "ssim_full"), 0.0)
    for p, t, m in zip(pred.split(chunk), target.split(chunk), masks.split(chunk)):
        p, t = p.double(), t.double()
        m = m.to(p.device).double()  # (n, 1, H, W): broadcast over channels
        n_hole = C * m.sum((1, 2, 3))  # (n,): |M|
        err = p - t
        mse = ((err ** 2) * m).sum((1, 2, 3)) / n_hole
        total["psnr"] += float((10.0 * torch.log10(255.0 ** 2 / mse.clamp_min(MSE_FLOOR))).sum())
        total["l1"] += float(((err.abs() * m).sum((1, 2, 3)) / n_hole / 255.0).sum())
        total["ssim"] += float(((_ssim_map(p, t) * m).sum((1, 2, 3)) / n_hole).sum())
        total["psnr_full"] += float(_psnr(p, t).sum())
        total["ssim_full"] += float(_ssim(p, t).sum())
    return {k: v / len(pred) for k, v in total.items()}
