"""The frame-interpolation baselines and scores against hand computations: the blend of two
frames, the Farneback halfway warp on a translating square, PSNR of a known MSE, SSIM of a
match, and the shape and dtype checks."""

import math

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.frames import blend, flow_warp, frame_scores, halfway_warps

BG = 40  # background level of the square's frames


def square(x0, c=1, size=48, side=12, y0=18):
    """(1, c, size, size) uint8: a textured side x side square with its left edge at x0 on a
    flat background. The texture is the same wherever the square sits, so frames with x0 = 10,
    12, 14 are a square moving right by 2 px a frame."""
    g = np.random.default_rng(0)
    tex = 150 + 60 * g.random((c, side, side))  # 150..210: well above the background
    out = np.full((1, c, size, size), BG, np.float64)
    out[0, :, y0:y0 + side, x0:x0 + side] = tex
    return torch.from_numpy(out.round().astype(np.uint8))


def centre_x(frame):
    """x of the centroid of the square in a (1, C, H, W) frame: the mean over columns weighted by
    the excess over the background."""
    excess = (frame.double() - BG).clamp_min(0).sum((0, 1, 2))  # (W,)
    return float((excess * torch.arange(len(excess))).sum() / excess.sum())


# ---- blend -------------------------------------------------------------------------------


def test_blend_of_two_constant_frames_is_their_mean():
    a = torch.full((2, 3, 5, 7), 100, dtype=torch.uint8)
    b = torch.full((2, 3, 5, 7), 201, dtype=torch.uint8)
    out = blend(a, b)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 5, 7)
    assert (out == 151).all()  # 150.5 rounded half up
    assert (blend(a, torch.full_like(a, 200)) == 150).all()
    assert (blend(b, a) == out).all()  # symmetric
    assert (blend(torch.full_like(a, 255), torch.full_like(a, 255)) == 255).all()  # no overflow


# ---- flow_warp ---------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3])
def test_flow_warp_puts_a_moving_square_in_the_middle(c):
    prev, mid, nxt = square(10, c), square(12, c), square(14, c)
    out = flow_warp(prev, nxt)
    assert out.dtype == torch.uint8 and out.shape == prev.shape
    side = 12
    assert centre_x(prev) == pytest.approx(10 + (side - 1) / 2, abs=0.5)  # the measure itself
    assert centre_x(out) == pytest.approx(12 + (side - 1) / 2, abs=0.75)
    warped, blended = frame_scores(out, mid), frame_scores(blend(prev, nxt), mid)
    assert warped["psnr"] > blended["psnr"] + 5  # blend shows two faint squares, the warp one
    assert warped["ssim"] > blended["ssim"]


def test_flow_warp_of_identical_frames_returns_them():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 32, 40), generator=g, dtype=torch.uint8)
    x = torch.nn.functional.avg_pool2d(x.float(), 3, 1, 1).round().to(torch.uint8)  # some texture
    out = flow_warp(x, x)
    assert (out.int() - x.int()).abs().max() <= 1
    grey = x[:, :1].contiguous()
    assert (flow_warp(grey, grey).int() - grey.int()).abs().max() <= 1


@pytest.mark.parametrize("c", [1, 3])
def test_halfway_warps_are_the_two_halves_of_flow_warp(c):
    """Each neighbour alone lands the square in the middle; their mean is flow_warp to rounding."""
    prev, mid, nxt = square(10, c), square(12, c), square(14, c)
    wp, wn = halfway_warps(prev, nxt)
    assert wp.dtype == wn.dtype == torch.float32 and wp.shape == wn.shape == prev.shape
    for w in (wp, wn):
        assert centre_x(w) == pytest.approx(12 + (12 - 1) / 2, abs=0.75)
    assert torch.equal((0.5 * (wp + wn) + 0.5).floor().clamp(0, 255).to(torch.uint8), flow_warp(prev, nxt))
    assert torch.equal(halfway_warps(nxt, prev)[0], halfway_warps(prev, nxt)[1])  # the same two warps swapped


def test_warps_do_not_depend_on_the_chunking():
    """Chunks go to a thread pool; the result is the same as one frame at a time."""
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.avg_pool2d(torch.randint(0, 256, (70, 1, 24, 24), generator=g).float(), 3, 1, 1)
    a, b = x.round().to(torch.uint8), x.roll(2, -1).round().to(torch.uint8)
    whole = flow_warp(a, b)  # 70 frames: two chunks of 64 and 6
    assert torch.equal(whole, torch.cat([flow_warp(a[i:i + 1], b[i:i + 1]) for i in range(len(a))]))


def test_flow_warp_of_two_flat_frames_is_their_blend():
    """No texture, no flow: both neighbours count, each by half."""
    a = torch.full((2, 3, 24, 24), 100, dtype=torch.uint8)
    b = torch.full_like(a, 201)
    assert torch.equal(flow_warp(a, b), blend(a, b))  # 151 everywhere
    assert torch.equal(flow_warp(b, a), blend(a, b))


# ---- frame_scores ------------------------------------------------------------------------


def test_scores_of_identical_frames_are_a_huge_psnr_and_ssim_one():
    x = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    s = frame_scores(x, x)
    assert s["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 1e-10))  # MSE clamped at 1e-10
    assert math.isfinite(s["psnr"]) and s["psnr"] > 140
    assert s["ssim"] == pytest.approx(1.0)


def test_psnr_of_a_known_mse():
    target = torch.full((2, 3, 16, 16), 100, dtype=torch.uint8)
    pred = target.clone()
    pred[0] += 4  # MSE 16 everywhere
    pred[1, :, :8] += 2  # half the pixels off by 2: MSE 2
    want = (10 * math.log10(255 ** 2 / 16) + 10 * math.log10(255 ** 2 / 2)) / 2
    assert frame_scores(pred, target)["psnr"] == pytest.approx(want)
    assert frame_scores(pred[:1], target[:1])["psnr"] == pytest.approx(20 * math.log10(255 / 4))


def test_ssim_uses_every_channel_and_falls_with_noise():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (2, 3, 24, 24), generator=g, dtype=torch.uint8)
    x = torch.nn.functional.avg_pool2d(x.float(), 5, 1, 2).round().to(torch.uint8)
    hurt = x.clone()
    hurt[:, 2] = 255 - hurt[:, 2]  # only the blue channel
    assert frame_scores(hurt, x)["ssim"] < 0.9
    scores = []
    for sigma in (2, 10, 40):
        noisy = (x.float() + sigma * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)
        scores.append(frame_scores(noisy, x)["ssim"])
    assert 1 > scores[0] > scores[1] > scores[2]


# ---- checks ------------------------------------------------------------------------------


def test_mismatched_or_wrong_frames_are_user_errors():
    a, b = square(10), square(14)
    with pytest.raises(GankitError, match="differ in shape"):
        blend(a, b[..., :-1])
    with pytest.raises(GankitError, match="differ in shape"):
        flow_warp(a, square(14, c=3))
    with pytest.raises(GankitError, match="differ in shape"):
        frame_scores(a, b[..., :-1, :])
    with pytest.raises(GankitError, match="uint8"):
        blend(a.float(), b.float())
    with pytest.raises(GankitError, match="uint8"):
        frame_scores(a[0], b[0])  # (C, H, W): no batch axis
    with pytest.raises(GankitError, match="1 or 3"):
        flow_warp(a.expand(1, 4, 48, 48), b.expand(1, 4, 48, 48))
    with pytest.raises(GankitError, match="at least 11 px"):
        frame_scores(a[..., :10, :], b[..., :10, :])
