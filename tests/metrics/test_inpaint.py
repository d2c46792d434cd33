"""The inpainting baselines and hole scores against hand computations: known pixels kept bit
for bit, no leak of the hole's content, the fill of a smooth ramp, the mean fill of a constant,
PSNR and L1 of a known error in the hole, SSIM of a match, and the input checks."""

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.inpaint import (BASELINES, INPAINT_PROTOCOL, biharmonic, hole_scores, mean_fill,
                                    navier_stokes, telea)

EXACT = 10 * math.log10(255 ** 2 / 1e-10)  # 148.13 dB: the floored MSE of an exact match


def random_batch(c, n=3, h=20, w=24, seed=0):
    """(n, c, h, w) uint8 noise and bool (n, 1, h, w) masks: a rectangle and scattered pixels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    masks = torch.rand((n, 1, h, w), generator=g) < 0.1
    masks[:, :, 5:11, 7:15] = True
    return images, masks


def ramp(c=1, size=32):
    """(1, c, size, size) uint8: a horizontal linear ramp per channel (integers, so exactly
    linear), and a 6 x 6 hole off the centre, away from the borders."""
    x = torch.arange(size, dtype=torch.int64)
    rows = [40 + 2 * x, 200 - 2 * x, 60 + x][:c]  # 2 grey levels a pixel at most: smooth
    img = torch.stack([r.expand(size, size) for r in rows])[None].to(torch.uint8)
    masks = torch.zeros((1, 1, size, size), dtype=torch.bool)
    masks[:, :, 12:18, 6:12] = True
    return img, masks


# ---- baselines -------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_keep_known_pixels_and_shape(name, c):
    images, masks = random_batch(c)
    out = BASELINES[name](images, masks)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    known = ~masks.expand_as(images)
    assert torch.equal(out[known], images[known])
    assert not torch.equal(out, images)  # the hole was filled, not left as it was


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_do_not_see_the_hole(name, c):
    images, masks = random_batch(c, seed=1)
    other = images.clone()
    hole = masks.expand_as(images)
    other[hole] = torch.randint(0, 256, (int(hole.sum()),), generator=torch.Generator().manual_seed(2),
                                dtype=torch.uint8)
    assert not torch.equal(other, images)
    assert torch.equal(BASELINES[name](other, masks), BASELINES[name](images, masks))
    zeroed = images.masked_fill(hole, 0)
    assert torch.equal(BASELINES[name](zeroed, masks), BASELINES[name](images, masks))


@pytest.mark.parametrize("c", [1, 3])
def test_smooth_ramp_is_filled_close_to_the_truth(c):
    img, masks = ramp(c)
    base = hole_scores(mean_fill(img, masks), img, masks)["l1"]
    assert base > 10 / 255  # the mean colour is far from the hole's left-of-centre values
    for fn in (telea, navier_stokes, biharmonic):
        l1 = hole_scores(fn(img, masks), img, masks)["l1"]
        assert l1 < 3 / 255, (fn.__name__, l1 * 255)
        assert l1 < base / 5, (fn.__name__, l1 * 255, base * 255)


@pytest.mark.parametrize("c", [1, 3])
def test_biharmonic_reproduces_a_linear_ramp(c):
    img, masks = ramp(c)
    out = biharmonic(img, masks)
    # a linear function is biharmonic: the solve returns it up to float error (measured: exact after rounding)
    assert (out.int() - img.int()).abs().max() <= 1
    assert hole_scores(out, img, masks)["l1"] < 0.1 / 255


def test_mean_fill_of_a_constant_is_exact():
    img = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    img[1] = 200
    masks = torch.zeros((2, 1, 16, 16), dtype=torch.bool)
    masks[:, :, 4:9, 3:12] = True
    out = mean_fill(img, masks)
    assert torch.equal(out, img)
    s = hole_scores(out, img, masks)
    assert s["psnr"] == pytest.approx(EXACT) and s["psnr"] == pytest.approx(148.13, abs=0.01)
    assert s["l1"] == 0.0


def test_mean_fill_rounds_the_known_mean_half_up():
    img = torch.zeros((1, 1, 12, 12), dtype=torch.uint8)
    img[0, 0, 0, :6] = 1  # known values: six 1s and one hole pixel; the rest 0
    masks = torch.zeros((1, 1, 12, 12), dtype=torch.bool)
    masks[0, 0, 11, 11] = True
    # 143 known pixels: mean 6/143 -> 0
    assert int(mean_fill(img, masks)[0, 0, 11, 11]) == 0
    img = torch.tensor([[[[10, 11], [0, 0]]]], dtype=torch.uint8)
    masks = torch.tensor([[[[False, False], [True, True]]]])
    assert mean_fill(img, masks)[0, 0, 1].tolist() == [11, 11]  # 10.5 -> 11 (half up)
    img = torch.tensor([[[[10, 12], [11, 0]]]], dtype=torch.uint8)
    masks = torch.tensor([[[[False, False], [False, True]]]])
    assert int(mean_fill(img, masks)[0, 0, 1, 1]) == 11


def test_empty_hole_is_returned_unchanged():
    images, masks = random_batch(3)
    masks[1] = False
    for fn in BASELINES.values():
        assert torch.equal(fn(images, masks)[1], images[1])


def test_bad_baseline_input():
    images, masks = random_batch(3)
    full = masks.clone()
    full[2] = True
    cases = [
        (lambda: telea(images.float(), masks), "uint8"),
        (lambda: mean_fill(images[:, :2], masks), "uint8"),
        (lambda: biharmonic(images[0], masks), "uint8"),
        (lambda: navier_stokes(images, masks.to(torch.uint8)), "bool"),
        (lambda: mean_fill(images, masks.expand(-1, 3, -1, -1)), "bool"),
        (lambda: telea(images, masks[:2]), "do not match"),
        (lambda: telea(images, masks[..., :-1]), "do not match"),
        (lambda: mean_fill(images, full), "image 2"),
        (lambda: telea(images, masks, radius=0), "radius"),
    ]
    for call, needle in cases:
        with pytest.raises(GankitError) as e:
            call()
        assert needle in str(e.value) and "\n" not in str(e.value)


# ---- scores ----------------------------------------------------------------------------


def scored_pair():
    """Two 3-channel 24 x 24 targets, a 4 x 4 hole in the middle, and predictions that differ
    only in the hole: image 0 by +6 on half the hole's values and -2 on the other half (MSE 20,
    mean |error| 4), image 1 by +3 everywhere in the hole (MSE 9, mean |error| 3)."""
    g = torch.Generator().manual_seed(3)
    target = torch.randint(20, 230, (2, 3, 24, 24), generator=g, dtype=torch.uint8)
    masks = torch.zeros((2, 1, 24, 24), dtype=torch.bool)
    masks[:, :, 10:14, 10:14] = True
    err = torch.zeros((2, 3, 24, 24), dtype=torch.int64)
    err[0, :, 10:12, 10:14], err[0, :, 12:14, 10:14] = 6, -2
    err[1, :, 10:14, 10:14] = 3
    return (target.long() + err).to(torch.uint8), target, masks


def test_hole_psnr_and_l1_of_a_known_error():
    pred, target, masks = scored_pair()
    s = hole_scores(pred, target, masks)
    psnr = (10 * math.log10(255 ** 2 / 20) + 10 * math.log10(255 ** 2 / 9)) / 2
    assert s["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert s["l1"] == pytest.approx((4 + 3) / 2 / 255, abs=1e-12)
    # the whole image: the same squared errors over 24 * 24 pixels instead of 16
    full = (10 * math.log10(255 ** 2 / (20 * 16 / 576)) + 10 * math.log10(255 ** 2 / (9 * 16 / 576))) / 2
    assert s["psnr_full"] == pytest.approx(full, abs=1e-9)
    assert s["ssim"] < s["ssim_full"] < 1.0  # the error is all in the hole


def test_errors_outside_the_hole_change_only_the_full_scores():
    pred, target, masks = scored_pair()
    s = hole_scores(pred, target, masks)
    far = pred.clone()
    far[:, :, :3, :] = 0  # rows 0..2: more than 5 px (the SSIM window's reach) from the hole's rows 10..13
    far[:, :, :, 20:] = 255  # columns 20..23: 6 px and more from the hole's columns 10..13
    t = hole_scores(far, target, masks)
    for k in ("psnr", "l1", "ssim"):
        assert t[k] == pytest.approx(s[k], abs=1e-12), k
    assert t["psnr_full"] < s["psnr_full"] - 3 and t["ssim_full"] < s["ssim_full"]
    near = pred.clone()
    near[:, :, 9, 10:14] = (near[:, :, 9, 10:14].long() + 40).clamp(0, 255).to(torch.uint8)  # next to the hole
    u = hole_scores(near, target, masks)
    assert u["psnr"] == pytest.approx(s["psnr"]) and u["l1"] == pytest.approx(s["l1"])
    assert u["ssim"] < s["ssim"] - 1e-3  # the window of a hole pixel sees its neighbours


@pytest.mark.parametrize("c", [1, 3])
def test_identical_images_score_a_perfect_match(c):
    images, masks = random_batch(c, h=16, w=16)
    s = hole_scores(images, images, masks, chunk=2)
    assert s["ssim"] == pytest.approx(1.0, abs=1e-12) and s["ssim_full"] == pytest.approx(1.0, abs=1e-12)
    assert s["psnr"] == pytest.approx(EXACT) and s["psnr_full"] == pytest.approx(EXACT) and s["l1"] == 0.0


def test_chunking_does_not_change_the_scores():
    images, masks = random_batch(3, n=5, h=16, w=16)
    pred = mean_fill(images, masks)
    a, b = hole_scores(pred, images, masks, chunk=2), hole_scores(pred, images, masks, chunk=16)
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-12), k


def test_bad_score_input():
    pred, target, masks = scored_pair()
    empty = masks.clone()
    empty[1] = False
    small = torch.zeros((1, 1, 10, 10), dtype=torch.uint8)
    small_mask = torch.ones((1, 1, 10, 10), dtype=torch.bool)
    cases = [
        (lambda: hole_scores(pred.float(), target, masks), "uint8"),
        (lambda: hole_scores(pred, target[:1], masks), "differ in shape"),
        (lambda: hole_scores(pred, target, masks.long()), "bool"),
        (lambda: hole_scores(pred, target, masks[:, :, :-1]), "do not match"),
        (lambda: hole_scores(pred, target, empty), "image 1"),
        (lambda: hole_scores(small, small, small_mask), "11"),
        (lambda: hole_scores(pred[:0], target[:0], masks[:0]), "empty batch"),
    ]
    for call, needle in cases:
        with pytest.raises(GankitError) as e:
            call()
        assert needle in str(e.value) and "\n" not in str(e.value)


def test_protocol_is_one_line():
    assert "\n" not in INPAINT_PROTOCOL and "hole" in INPAINT_PROTOCOL and "1e-10" in INPAINT_PROTOCOL
