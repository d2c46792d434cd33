"""Scores of super-resolved images and videos, with the SR literature's protocol, and the
classical baselines.

    rgb_to_y(x)                    (N, 3, H, W) uint8 or [0, 1] -> Y (N, 1, H, W) in [16, 235]
    psnr_y(sr, hr, scale)          (N,) PSNR on Y, borders shaved
    ssim_y(sr, hr, scale)          (N,) SSIM on Y, borders shaved
    sr_scores(sr, hr, scale)       {"psnr_y", "ssim_y"}: the means over images
    modcrop(hr, scale)             HR cropped to sides that are multiples of scale   } from gankit.data.superres:
    downscale(hr, scale)           LR from HR: modcrop, then antialiased bicubic     } the one LR operator
    upscale(lr, scale, mode)       the bicubic / nearest baselines (PIL)
    tof(frames_a, frames_b)        TecoGAN's temporal optical-flow error between two videos

Protocol (SRCNN, EDSR, ESRGAN and their benchmarks Set5/Set14/BSD100/Urban100):
  - SR outputs are quantised to uint8 before scoring, as the papers save them to PNG.
  - Scores are on the Y channel of MATLAB's rgb2ycbcr (ITU-R BT.601, studio range):
        Y = 16 + 65.481 R + 128.553 G + 24.966 B,   R, G, B in [0, 1]  ->  Y in [16, 235]
    kept in float (BasicSR does the same; MATLAB on uint8 would round Y to an integer, which
    moves PSNR by a few hundredths of a dB). Grey images (C = 1) are scored on their only channel
    as it is, on 0..255: no studio-range mapping.
  - `scale` pixels are shaved from every border first (the convolution's and the resampling's
    edge effects are not the method's).
  - PSNR = 10 log10(255^2 / MSE) per image (peak 255 on Y, although Y tops at 235: the
    convention), then the mean over images; inf for an exact match.
  - SSIM (Wang et al. 2004): Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, L = 255,
    means and (biased) variances over the window, averaged over the positions where the whole
    window fits (Wang's ssim_index.m with filter2 'valid', BasicSR alike), per image, then the
    mean over images. Computed here: torchmetrics 1.9's SSIM pads by reflection and averages
    over the whole image, mirrored borders included, which is not the benchmarks' number.
  - LR is made from HR by `downscale` (gankit.data.superres, so that training and evaluation
    use the same operator): HR cropped at the bottom and right to multiples of scale (MATLAB's
    modcrop), then torch's antialiased bicubic (`antialias=True`: Keys a = -0.5, MATLAB
    imresize's kernel, support widened by the factor when reducing, as imresize). PIL's resize
    gives the same up to rounding (it keeps 8 bits between its two passes).
    `upscale`'s bicubic is PIL's (a = -0.5, MATLAB's kernel): the baseline the papers print.

tOF (Chu et al. 2020, TecoGAN): for t = 1..T-1, the Farneback optical flow (OpenCV,
calcOpticalFlowFarneback with pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
poly_sigma 1.2, flags 0) of (frame_{t-1}, frame_t) in grey (OpenCV RGB2GRAY) in each video; the
error is the per-pixel length of the difference of the two flows (pixels per frame) averaged over
pixels, then the mean over t. That is TecoGAN's metrics.py ("l1" over pixels of the vector
length); its script also crops the flow to a central window, a multiple of 32 px at least 8 px
from each border, and skips the clip's first and last two frames: here the caller picks the
frames and the whole frame counts. Lower is better: 0 when b moves exactly as a does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from gankit.data.superres import downscale, modcrop  # noqa: F401  (re-exported: the one LR operator)
from gankit.errors import GankitError

SR_PROTOCOL = ("uint8; Y of BT.601 studio range (16 + 65.481 R + 128.553 G + 24.966 B), float; "
               "shave `scale` px; PSNR peak 255 per image then mean; SSIM Gaussian 11 sigma 1.5 "
               "K1 0.01 K2 0.03 L 255 valid, per image then mean; LR = PIL bicubic (antialiased) "
               "of HR modcropped")
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
SSIM_WINDOW = 11
_Y = (65.481, 128.553, 24.966)  # BT.601 luma, scaled to [16, 235]: the weights sum to 219
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


def _check_images(x: Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise GankitError(f"{what} must be (N, 1 or 3, H, W) images; got shape {tuple(x.shape)}")


def rgb_to_y(x: Tensor) -> Tensor:
    """Y of MATLAB's rgb2ycbcr, float64 on 0..255: uint8 or [0, 1] float (N, 3, H, W) ->
    (N, 1, H, W) in [16, 235]. Grey (N, 1, H, W) passes through unchanged (as float64 on
    0..255: a float image is multiplied by 255)."""
    _check_images(x, "images")
    x = x.double() if x.dtype == torch.uint8 else x.double() * 255.0  # 0..255
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (16.0 + (_Y[0] * r + _Y[1] * g + _Y[2] * b) / 255.0).unsqueeze(1)  # (N, 1, H, W)


def _shaved_y(sr: Tensor, hr: Tensor, scale: int, min_side: int = 1) -> tuple[Tensor, Tensor]:
    """(Y of sr, Y of hr), each (N, 1, H - 2 scale, W - 2 scale)."""
    _check_images(sr, "super-resolved images")
    if sr.shape != hr.shape:
        hint = " (score against modcrop(hr, scale): downscale crops HR to multiples of scale)" \
            if tuple(sr.shape) == tuple(modcrop(hr, scale).shape) else ""
        raise GankitError(f"super-resolved images {tuple(sr.shape)} and HR images {tuple(hr.shape)} "
                          f"differ in shape{hint}")
    if not isinstance(scale, int) or scale < 1:
        raise GankitError(f"scale must be a positive integer; got {scale!r}")
    H, W = sr.shape[-2:]
    if min(H, W) - 2 * scale < min_side:
        raise GankitError(f"images of {H} x {W} px leave less than {min_side} px after shaving {scale} px "
                          "from each border; use larger images")
    crop = (..., slice(scale, H - scale), slice(scale, W - scale))
    return rgb_to_y(sr)[crop], rgb_to_y(hr)[crop]


def psnr_y(sr: Tensor, hr: Tensor, scale: int) -> Tensor:
    """(N,) float64: 10 log10(255^2 / MSE) on Y, `scale` px shaved from each border."""
    a, b = _shaved_y(sr, hr, scale)
    mse = (a - b).pow(2).mean((1, 2, 3))  # (N,)
    return 10.0 * torch.log10(255.0 ** 2 / mse)  # inf where mse = 0


def _gaussian_window(sigma: float = 1.5) -> Tensor:
    """(1, 1, 11, 11) float64, summing to 1: MATLAB's fspecial('gaussian', 11, 1.5)."""
    k = torch.exp(-(torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    return (k[:, None] * k[None, :])[None, None]


def ssim_y(sr: Tensor, hr: Tensor, scale: int) -> Tensor:
    """(N,) float64: SSIM on Y (Gaussian 11 x 11, sigma 1.5, L = 255), shaved as `psnr_y`,
    averaged over the valid window positions."""
    a, b = _shaved_y(sr, hr, scale, min_side=SSIM_WINDOW)  # (N, 1, H', W') on 0..255
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2  # (K1 L)^2, (K2 L)^2
    # E_w[.] for a, b, a^2, b^2, ab in one valid conv: (5N, 1, H' - 10, W' - 10)
    m_a, m_b, m_aa, m_bb, m_ab = F.conv2d(torch.cat([a, b, a * a, b * b, a * b]), _gaussian_window()).chunk(5)
    var_a, var_b, cov = m_aa - m_a ** 2, m_bb - m_b ** 2, m_ab - m_a * m_b
    # SSIM = (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))
    s = (2 * m_a * m_b + c1) * (2 * cov + c2) / ((m_a ** 2 + m_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean((1, 2, 3))  # (N,)


def sr_scores(sr: Tensor, hr: Tensor, scale: int, chunk: int = 16) -> dict:
    """{"psnr_y", "ssim_y"}: the means over images of uint8 (N, C, H, W) `sr` against `hr`."""
    _check_images(sr, "super-resolved images")
    psnr = ssim = 0.0
    for s, h in zip(sr.split(chunk), hr.split(chunk)):
        psnr += float(psnr_y(s, h, scale).sum())
        ssim += float(ssim_y(s, h, scale).sum())
    return {"psnr_y": psnr / len(sr), "ssim_y": ssim / len(sr)}


def _resize(x: Tensor, size: tuple[int, int], resample: Image.Resampling) -> Tensor:
    """uint8 (N, C, H, W) -> (N, C, *size) with PIL, one 8-bit channel at a time (PIL resamples
    the channels of an RGB image independently, so this is the same as resizing it whole)."""
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise GankitError(f"resizing takes uint8 (N, C, H, W) images; got {x.dtype} of shape {tuple(x.shape)}")
    h, w = size
    src = x.cpu().numpy()
    out = np.empty((*src.shape[:2], h, w), np.uint8)
    for n in range(src.shape[0]):
        for c in range(src.shape[1]):
            img = Image.fromarray(np.ascontiguousarray(src[n, c]))
            out[n, c] = np.asarray(img.resize((w, h), resample, reducing_gap=None))
    return torch.from_numpy(out)


def upscale(lr: Tensor, scale: int, mode: str = "bicubic") -> Tensor:
    """The classical baselines: uint8 (N, C, h, w) -> (N, C, scale*h, scale*w), PIL's bicubic
    (MATLAB's kernel, clipped and rounded to uint8) or nearest (each pixel repeated)."""
    if mode not in _RESAMPLE:
        raise GankitError(f"upscale mode must be one of {', '.join(_RESAMPLE)}; got {mode!r}")
    return _resize(lr, (lr.shape[-2] * scale, lr.shape[-1] * scale), _RESAMPLE[mode])


def _grey(frames: Tensor) -> list[np.ndarray]:
    """uint8 (T, 1 or 3, H, W) -> T grey (H, W) arrays (OpenCV's RGB2GRAY: BT.601 luma)."""
    import cv2

    src = frames.cpu().numpy()
    if src.shape[1] == 1:
        return [np.ascontiguousarray(f[0]) for f in src]
    return [cv2.cvtColor(np.ascontiguousarray(f.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY) for f in src]


def tof(frames_a: Tensor, frames_b: Tensor) -> float:
    """TecoGAN's tOF between two uint8 videos (T, C, H, W), C 1 or 3 (RGB), T >= 2: the mean
    over t of the mean over pixels of |flow_a(t-1 -> t) - flow_b(t-1 -> t)| (vector length)."""
    import cv2  # imported on use: scoring images needs no OpenCV

    if frames_a.shape != frames_b.shape:
        raise GankitError(f"videos {tuple(frames_a.shape)} and {tuple(frames_b.shape)} differ in shape")
    if frames_a.ndim != 4 or frames_a.shape[1] not in (1, 3) or frames_a.shape[0] < 2 \
            or frames_a.dtype != torch.uint8 or frames_b.dtype != torch.uint8:
        raise GankitError(f"tOF takes two uint8 videos (T >= 2, 1 or 3 channels, H, W); got "
                          f"{frames_a.dtype} and {frames_b.dtype} of shape {tuple(frames_a.shape)}")
    a, b = _grey(frames_a), _grey(frames_b)
    errs = []
    for t in range(1, len(a)):
        flow_a = cv2.calcOpticalFlowFarneback(a[t - 1], a[t], None, **FARNEBACK)  # (H, W, 2): (dx, dy)
        flow_b = cv2.calcOpticalFlowFarneback(b[t - 1], b[t], None, **FARNEBACK)
        diff = flow_a.astype(np.float64) - flow_b
        errs.append(float(np.sqrt((diff ** 2).sum(-1)).mean()))  # mean over pixels of |d flow|
    return float(np.mean(errs))
