"""Frame interpolation (predict frame t from frames t-1 and t+1): its classical baselines and
its scores, with their protocol.

    blend(prev, next)              the mean of the two neighbours, rounded (half up)
    flow_warp(prev, next)          Farneback flow, warped halfway (a classical baseline, no learning)
    halfway_warps(prev, next)      its two halves before the average: each neighbour warped halfway
    frame_scores(pred, target)     {"psnr", "ssim"}: per image, then the mean over images

All take uint8 (N, C, H, W) frames, C 1 (grey) or 3 (RGB), and the baselines return the same.

Baselines:
  - `blend`: (prev + next + 1) // 2 per pixel and channel, i.e. the mean rounded half up.
  - `flow_warp`: the Farneback optical flow (OpenCV calcOpticalFlowFarneback, the parameters of
    gankit.metrics.sr.FARNEBACK: pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
    poly_sigma 1.2, flags 0) on grey frames (OpenCV RGB2GRAY), from prev to next (f_pn) and from
    next to prev (f_np). Each neighbour is backward-warped to the middle (cv2.remap, bilinear,
    border replicate, in float32) and the two are averaged, then rounded half up to uint8:
        mid(x) = ( prev(x - f_pn(x) / 2) + next(x - f_np(x) / 2) ) / 2
    The approximation: the flow from the middle frame to a neighbour at middle-frame pixel x is
    taken to be minus half the flow that starts at the same pixel x of that neighbour (the flow at
    the middle position = half the flow at the source position). It holds where motion is
    smooth over the half displacement; at motion boundaries and disocclusions it is not, and the
    average of the two warps hides part of the error.

Scores (`frame_scores`):
  - on uint8 values as float64 on 0..255, all channels, the whole frame (no border shave).
  - PSNR = 10 log10(255^2 / MSE) per image, MSE over channels and pixels, then the mean over
    images. MSE is clamped at 1e-10 so that an exact match gives a finite 148.13 dB and the mean
    of a batch stays finite; any real error of uint8 images has MSE >= 1 / (C H W), far above the
    clamp for frames under 10^10 values, so only exact matches are affected.
  - SSIM (Wang et al. 2004): Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, L = 255,
    window means and (biased) variances, averaged over the positions where the whole window fits
    ('valid') and over channels, per image, then the mean over images: the same formula and
    window as gankit.metrics.sr.ssim_y, applied to every channel instead of Y. Frames need
    sides of at least 11 px.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.sr import FARNEBACK, SSIM_WINDOW, _gaussian_window, _grey

FRAMES_PROTOCOL = ("uint8 (N, C, H, W), all channels, no shave; PSNR peak 255 per image (MSE clamped "
                   "at 1e-10) then mean; SSIM Gaussian 11 sigma 1.5 K1 0.01 K2 0.03 L 255 valid, "
                   "mean over channels, per image then mean; baselines: blend (mean rounded half up), "
                   "flow_warp (Farneback both ways, each neighbour warped halfway, averaged)")
MSE_FLOOR = 1e-10  # an exact match scores 10 log10(255^2 / 1e-10) = 148.13 dB


def _check_pair(a: Tensor, b: Tensor, what_a: str, what_b: str) -> None:
    """Both uint8 (N, 1 or 3, H, W) of the same shape, or a one-line GankitError."""
    for x, what in ((a, what_a), (b, what_b)):
        if x.ndim != 4 or x.shape[1] not in (1, 3) or x.dtype != torch.uint8:
            raise GankitError(f"{what} must be uint8 (N, 1 or 3, H, W) frames; got {x.dtype} of "
                              f"shape {tuple(x.shape)}")
    if a.shape != b.shape:
        raise GankitError(f"{what_a} {tuple(a.shape)} and {what_b} {tuple(b.shape)} differ in shape")


def blend(prev: Tensor, next: Tensor) -> Tensor:  # noqa: A002  (the task's own names)
    """uint8 (N, C, H, W): the mean of the two neighbours, rounded half up."""
    _check_pair(prev, next, "previous frames", "next frames")
    return ((prev.int() + next.int() + 1) // 2).to(torch.uint8)


def _warp_chunk(prev: np.ndarray, next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: A002
    """uint8 (n, C, H, W) arrays -> float32 (n, H, W, C) arrays (prev, next), each warped halfway
    to the middle by its own outgoing Farneback flow (see the module docstring)."""
    import cv2  # imported on use: scoring needs no OpenCV

    n, C, H, W = prev.shape
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))  # (H, W) each
    grey_p, grey_n = _grey(torch.from_numpy(prev)), _grey(torch.from_numpy(next))
    src_p = prev.transpose(0, 2, 3, 1).astype(np.float32)  # (n, H, W, C): OpenCV's layout
    src_n = next.transpose(0, 2, 3, 1).astype(np.float32)

    def halfway(src: np.ndarray, flow: np.ndarray) -> np.ndarray:
        # backward warp: out(x) = src(x - flow(x) / 2), flow (H, W, 2) as (dx, dy)
        out = cv2.remap(src, gx - 0.5 * flow[..., 0], gy - 0.5 * flow[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(H, W, C)  # remap drops a single channel's axis

    wp, wn = np.empty((n, H, W, C), np.float32), np.empty((n, H, W, C), np.float32)
    for i in range(n):
        f_pn = cv2.calcOpticalFlowFarneback(grey_p[i], grey_n[i], None, **FARNEBACK)  # (H, W, 2)
        f_np = cv2.calcOpticalFlowFarneback(grey_n[i], grey_p[i], None, **FARNEBACK)
        wp[i], wn[i] = halfway(src_p[i], f_pn), halfway(src_n[i], f_np)
    return wp, wn


def _warps(prev: Tensor, next: Tensor, fold, chunk: int = 64) -> Tensor:  # noqa: A002
    """`fold(wp, wn)` (float32 (n, H, W, C) halfway warps -> (n, ..., H, W, C)) over all frames,
    as (N, ..., C, H, W) on prev's device. Chunks run on a pool of torch's thread count
    (OpenCV's Farneback releases the GIL; OpenCV's own threading is set to 1 meanwhile, so the
    two do not oversubscribe the CPUs), in order, so the result does not depend on the pool."""
    import cv2
    from concurrent.futures import ThreadPoolExecutor

    _check_pair(prev, next, "previous frames", "next frames")
    p, n = prev.cpu().numpy(), next.cpu().numpy()
    spans = [slice(i, i + chunk) for i in range(0, len(p), chunk)]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max(1, min(torch.get_num_threads(), len(spans)))) as pool:
            parts = list(pool.map(lambda s: fold(*_warp_chunk(p[s], n[s])), spans))
    finally:
        cv2.setNumThreads(threads)
    if not parts:  # no frames: fold's shape of nothing
        parts = [fold(*(np.empty((0, *p.shape[2:], p.shape[1]), np.float32),) * 2)]
    out = np.concatenate(parts)  # (N, ..., H, W, C)
    return torch.from_numpy(np.moveaxis(out, -1, -3).copy()).to(prev.device)


def _round(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)  # rounded half up, as `blend`


def flow_warp(prev: Tensor, next: Tensor) -> Tensor:  # noqa: A002
    """uint8 (N, C, H, W): Farneback flow, warped halfway. Each neighbour is backward-warped by
    half its own outgoing flow (the flow at the middle position taken as half the flow at the
    same pixel of the source frame) and the two warps are averaged (see the module docstring)."""
    return _warps(prev, next, lambda wp, wn: _round(0.5 * (wp + wn)))


def halfway_warps(prev: Tensor, next: Tensor) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The two halves of `flow_warp` before they are averaged and rounded: float32 (N, C, H, W)
    on 0..255, prev warped halfway to the middle and next warped halfway to the middle (so
    `flow_warp` is their mean rounded half up). What a flow-guided interpolator
    (`interpolate.flow`) takes as input beside the two frames."""
    both = _warps(prev, next, lambda wp, wn: np.stack([wp, wn], 1))  # (N, 2, C, H, W)
    return both[:, 0].contiguous(), both[:, 1].contiguous()


def _psnr(a: Tensor, b: Tensor) -> Tensor:
    """(N,) float64: 10 log10(255^2 / MSE), a and b float64 on 0..255, MSE clamped at MSE_FLOOR."""
    mse = (a - b).pow(2).mean((1, 2, 3)).clamp_min(MSE_FLOOR)  # (N,)
    return 10.0 * torch.log10(255.0 ** 2 / mse)


def _ssim(a: Tensor, b: Tensor) -> Tensor:
    """(N,) float64: SSIM of (N, C, H, W) float64 on 0..255, valid positions, mean over channels."""
    N, C, H, W = a.shape
    a, b = a.reshape(N * C, 1, H, W), b.reshape(N * C, 1, H, W)  # each channel on its own
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2  # (K1 L)^2, (K2 L)^2
    # E_w[.] for a, b, a^2, b^2, ab in one valid conv: (5 N C, 1, H - 10, W - 10)
    m_a, m_b, m_aa, m_bb, m_ab = F.conv2d(torch.cat([a, b, a * a, b * b, a * b]), _gaussian_window()).chunk(5)
    var_a, var_b, cov = m_aa - m_a ** 2, m_bb - m_b ** 2, m_ab - m_a * m_b
    # SSIM = (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))
    s = (2 * m_a * m_b + c1) * (2 * cov + c2) / ((m_a ** 2 + m_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean((1, 2, 3)).view(N, C).mean(1)  # (N,)


def frame_scores(pred: Tensor, target: Tensor, chunk: int = 16) -> dict:
    """{"psnr", "ssim"} of uint8 (N, C, H, W) interpolated frames against the true middle frames:
    per image, then the mean over images (protocol in the module docstring)."""
    _check_pair(pred, target, "interpolated frames", "target frames")
    H, W = pred.shape[-2:]
    if min(H, W) < SSIM_WINDOW:
        raise GankitError(f"frames of {H} x {W} px are smaller than SSIM's {SSIM_WINDOW} x {SSIM_WINDOW} "
                          "window; use frames with sides of at least 11 px")
    if len(pred) == 0:
        raise GankitError("no frames to score: got an empty batch")
    psnr = ssim = 0.0
    for p, t in zip(pred.split(chunk), target.split(chunk)):
        p, t = p.double(), t.double()
        psnr += float(_psnr(p, t).sum())
        ssim += float(_ssim(p, t).sum())
    return {"psnr": psnr / len(pred), "ssim": ssim / len(pred)}
