"""The SR scores against hand computations: Y of BT.601, PSNR on Y with the border shaved,
SSIM against a numpy SSIM, the PIL baselines, and TecoGAN's tOF."""

import math

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.sr import (downscale, modcrop, psnr_y, rgb_to_y, sr_scores, ssim_y, tof,
                               upscale)


def rand_u8(*shape, lo=0, hi=256):
    return torch.randint(lo, hi, shape, dtype=torch.uint8)


def smooth(n, c, h, w, seed=0):
    """uint8 images of a few low-frequency sinusoids, in 30..225."""
    g = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.zeros((n, c, h, w))
    for i in range(n):
        for ch in range(c):
            fy, fx, py, px = g.uniform(0.01, 0.05, 2).tolist() + g.uniform(0, 6.3, 2).tolist()
            out[i, ch] = 127.5 + 95 * np.sin(2 * np.pi * fy * yy + py) * np.cos(2 * np.pi * fx * xx + px)
    return torch.from_numpy(out.round().astype(np.uint8))


def y_numpy(x):
    """MATLAB rgb2ycbcr's Y, by hand: (N, 3, H, W) uint8 -> (N, H, W) float64."""
    x = x.numpy().astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]


# ---- Y -----------------------------------------------------------------------------------


def test_y_of_white_is_235_and_black_16():
    white, black = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    torch.testing.assert_close(rgb_to_y(white), torch.full((1, 1, 2, 2), 235.0, dtype=torch.float64))
    torch.testing.assert_close(rgb_to_y(black), torch.full((1, 1, 2, 2), 16.0, dtype=torch.float64))
    torch.testing.assert_close(rgb_to_y(white.float() / 255), rgb_to_y(white))  # [0, 1] floats alike


def test_y_matches_the_formula_and_grey_passes_through():
    x = rand_u8(2, 3, 5, 7)
    torch.testing.assert_close(rgb_to_y(x)[:, 0], torch.from_numpy(y_numpy(x)))
    g = rand_u8(2, 1, 5, 7)
    torch.testing.assert_close(rgb_to_y(g), g.double())
    with pytest.raises(GankitError, match="1 or 3"):
        rgb_to_y(rand_u8(1, 4, 5, 5))


# ---- PSNR --------------------------------------------------------------------------------


def test_psnr_of_a_one_pixel_shift_matches_numpy():
    x = rand_u8(2, 3, 24, 20)
    shifted = torch.roll(x, 1, dims=3)
    s = 3
    ya, yb = y_numpy(shifted)[:, s:-s, s:-s], y_numpy(x)[:, s:-s, s:-s]
    expect = 10 * np.log10(255.0 ** 2 / ((ya - yb) ** 2).mean(axis=(1, 2)))
    torch.testing.assert_close(psnr_y(shifted, x, s), torch.from_numpy(expect))
    assert sr_scores(shifted, x, s)["psnr_y"] == pytest.approx(expect.mean())


@pytest.mark.parametrize("d", [1, 5, 20])
def test_psnr_of_a_constant_offset(d):
    x = rand_u8(3, 3, 16, 16, hi=200)
    # on Y an offset d on R, G and B is d * 219 / 255: the weights sum to 219 on 0..255
    want = 20 * math.log10(255 / (d * 219 / 255))
    torch.testing.assert_close(psnr_y(x + d, x, 2), torch.full((3,), want, dtype=torch.float64))
    g = rand_u8(3, 1, 16, 16, hi=200)  # grey: no studio-range scaling
    want = 20 * math.log10(255 / d)
    torch.testing.assert_close(psnr_y(g + d, g, 2), torch.full((3,), want, dtype=torch.float64))


def test_psnr_of_identical_images_is_inf():
    x = rand_u8(2, 3, 16, 16)
    assert torch.isinf(psnr_y(x, x, 2)).all()


@pytest.mark.parametrize("scale", [2, 4])
def test_the_border_shave_drops_exactly_scale_pixels(scale):
    hr = rand_u8(2, 3, 32, 32)
    sr = (hr.int() + torch.randint(-10, 11, hr.shape)).clamp(0, 255).to(torch.uint8)
    clean = sr_scores(sr, hr, scale)
    bad = sr.clone()
    for region in [(..., slice(0, scale), slice(None)), (..., slice(-scale, None), slice(None)),
                   (..., slice(None), slice(0, scale)), (..., slice(None), slice(-scale, None))]:
        bad[region] = 255 - bad[region]
    assert sr_scores(bad, hr, scale) == clean  # a corrupt border does not count
    inner = sr.clone()
    inner[..., scale, scale + 5] = 255 - inner[..., scale, scale + 5]  # the first kept row
    hurt = sr_scores(inner, hr, scale)
    assert hurt["psnr_y"] < clean["psnr_y"] and hurt["ssim_y"] < clean["ssim_y"]


def test_scores_reject_mismatched_or_tiny_images():
    with pytest.raises(GankitError, match="differ in shape"):
        psnr_y(rand_u8(1, 3, 16, 16), rand_u8(1, 3, 16, 18), 2)
    hr = rand_u8(1, 3, 28, 28)
    with pytest.raises(GankitError, match=r"score against modcrop\(hr, scale\)"):
        sr_scores(upscale(downscale(hr, 3), 3), hr, 3)  # 28 -> 9 -> 27
    with pytest.raises(GankitError, match="less than 11 px"):
        ssim_y(rand_u8(1, 3, 16, 16), rand_u8(1, 3, 16, 16), 4)


# ---- SSIM --------------------------------------------------------------------------------


def ssim_numpy(a, b):
    """Wang et al.'s SSIM by hand on one (H, W) float64 pair on 0..255: 11 x 11 Gaussian
    window (sigma 1.5) at every valid position, then the mean."""
    k = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    win = np.outer(k, k) / np.outer(k, k).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ma, mb = (win * pa).sum(), (win * pb).sum()
            va, vb = (win * pa * pa).sum() - ma ** 2, (win * pb * pb).sum() - mb ** 2
            cov = (win * pa * pb).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_a_hand_computation():
    hr = rand_u8(2, 3, 17, 16)
    sr = (hr.int() + torch.randint(-40, 41, hr.shape)).clamp(0, 255).to(torch.uint8)
    ya, yb = y_numpy(sr)[:, 1:-1, 1:-1], y_numpy(hr)[:, 1:-1, 1:-1]  # 15 x 14: 5 x 4 windows
    want = torch.tensor([ssim_numpy(ya[i], yb[i]) for i in range(2)], dtype=torch.float64)
    torch.testing.assert_close(ssim_y(sr, hr, 1), want)


def test_ssim_is_one_on_itself_and_falls_with_noise():
    hr = smooth(2, 3, 40, 40)
    assert ssim_y(hr, hr, 4).tolist() == pytest.approx([1.0, 1.0])
    scores = []
    for sigma in (2, 10, 40):
        noisy = (hr.float() + sigma * torch.randn(hr.shape)).round().clamp(0, 255).to(torch.uint8)
        scores.append(sr_scores(noisy, hr, 4)["ssim_y"])
    assert 1 > scores[0] > scores[1] > scores[2]


# ---- resampling --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upscale_of_a_constant_is_constant(scale):
    lr = torch.full((2, 3, 5, 7), 173, dtype=torch.uint8)
    up = upscale(lr, scale)
    assert up.dtype == torch.uint8 and up.shape == (2, 3, 5 * scale, 7 * scale)
    assert (up == 173).all()


def test_nearest_upscale_repeats_pixels():
    lr = rand_u8(2, 3, 5, 7)
    want = lr.repeat_interleave(4, 2).repeat_interleave(4, 3)
    assert torch.equal(upscale(lr, 4, "nearest"), want)
    with pytest.raises(GankitError, match="bicubic, nearest"):
        upscale(lr, 4, "bilinear")


def test_bicubic_upscale_of_a_ramp_interpolates():
    """On a linear ramp a cubic kernel whose weights sum to 1 and are symmetric reproduces the
    ramp away from the borders: the upscaled pixel centres sit at (i + 0.5) / s - 0.5."""
    lr = (torch.arange(16) * 10).to(torch.uint8).view(1, 1, 1, 16).expand(1, 1, 4, 16).contiguous()
    up = upscale(lr, 4)[0, 0, 2].double()
    centres = (torch.arange(64) + 0.5) / 4 - 0.5
    torch.testing.assert_close(up[8:-8], (10 * centres[8:-8]).round().double(), atol=1, rtol=0)


@pytest.mark.parametrize("scale", [2, 4])
def test_downscale_then_upscale_of_a_smooth_image_is_close(scale):
    hr = smooth(2, 3, 66, 70)
    lr = downscale(hr, scale)
    assert lr.shape == (2, 3, 66 // scale, 70 // scale) and lr.dtype == torch.uint8
    back = upscale(lr, scale)
    assert sr_scores(back, modcrop(hr, scale), scale)["psnr_y"] > 35


def test_downscale_antialiases():
    """A one-pixel checkerboard averages to grey when reduced with an antialiasing filter;
    sampling without one would keep one of its two colours."""
    board = ((torch.arange(16).view(-1, 1) + torch.arange(16)) % 2 * 200 + 20).to(torch.uint8)
    lr = downscale(board.expand(1, 1, 16, 16).contiguous(), 4)
    assert ((lr.int() - 120).abs() <= 2).all()


# ---- tOF ---------------------------------------------------------------------------------


def moving(T=6, shift=1, seed=0, jitter=None):
    """A textured (T, 3, 48, 48) uint8 video panning right by `shift` px a frame; `jitter` adds a
    per-frame offset (dy, dx) to each frame."""
    big = smooth(1, 3, 96, 96, seed)[0].float()
    big += torch.from_numpy(np.random.default_rng(seed).normal(0, 20, (3, 96, 96))).float()
    big = torch.nn.functional.avg_pool2d(big[None], 3, 1, 1)[0]  # soft texture for the flow
    frames = []
    for t in range(T):
        dy, dx = (0, 0) if jitter is None else jitter[t]
        y0, x0 = 24 + dy, 20 + t * shift + dx
        frames.append(big[:, y0:y0 + 48, x0:x0 + 48])
    return torch.stack(frames).round().clamp(0, 255).to(torch.uint8)


def test_tof_of_identical_videos_is_zero_and_of_a_jittered_one_positive():
    a = moving()
    assert tof(a, a) == 0.0
    assert tof(a[:, :1], a[:, :1]) == 0.0  # grey frames too
    jitter = [(0, 0), (1, -1), (-1, 2), (2, 0), (0, -2), (-1, 1)]
    assert tof(a, moving(jitter=jitter)) > 0.3
    assert tof(a, moving(jitter=jitter)) > tof(a, moving(jitter=[(0, 0), (0, 0), (1, 0), (1, 0), (1, 0), (1, 0)]))


def test_tof_rejects_mismatched_videos():
    a = moving(T=3)
    with pytest.raises(GankitError, match="differ in shape"):
        tof(a, a[:2])
    with pytest.raises(GankitError, match="uint8 videos"):
        tof(a.float(), a.float())
