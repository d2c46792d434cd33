import itertools

import pytest
import torch
from torch.testing import assert_close

from gankit.augment import ADA_OPS, AdaState, ada_augment, diff_augment

ALL = "color,translation,cutout"


def gen(seed):
    return torch.Generator().manual_seed(seed)


def shifted(img, dy, dx):
    """img (C, H, W) moved down dy and right dx by hand, zeros where nothing moved in."""
    out = torch.zeros_like(img)
    H, W = img.shape[1:]
    for i, j in itertools.product(range(H), range(W)):
        if 0 <= i - dy < H and 0 <= j - dx < W:
            out[:, i, j] = img[:, i - dy, j - dx]
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", ALL])
def test_shape_and_dtype_kept(policy, dtype):
    x = torch.rand(4, 3, 16, 12, dtype=dtype) * 2 - 1
    out = diff_augment(x, policy, gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert not torch.equal(out, x)


def test_empty_policy_returns_x_unchanged():
    x = torch.randn(2, 3, 8, 8)
    assert diff_augment(x, "", gen(0)) is x


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match="'flip'.*valid: color, translation, cutout"):
        diff_augment(torch.zeros(1, 1, 4, 4), "color,flip", gen(0))


def test_translation_is_an_integer_shift_with_zero_fill():
    # 8 x 16 image, values 1..128 so no shift of it equals another: |dy| <= 1, |dx| <= 2
    B, H, W = 64, 8, 16
    img = torch.arange(1, H * W + 1, dtype=torch.float32).reshape(1, H, W)
    out = diff_augment(img.expand(B, 1, H, W), "translation", gen(0))
    seen = set()
    for b in range(B):
        matches = [
            (dy, dx)
            for dy, dx in itertools.product(range(-1, 2), range(-2, 3))
            if torch.equal(out[b], shifted(img, dy, dx))
        ]
        assert len(matches) == 1, f"sample {b} is not one zero-filled shift within range"
        seen.add(matches[0])
    assert len(seen) == 15  # every shift in range turns up over 64 samples (seed 0)


def test_translation_by_hand_on_tiny_image():
    # 4 x 4: at most one pixel each way; with this seed both samples move, and they move differently
    img = torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]])[None]
    out = diff_augment(img.expand(2, 1, 4, 4), "translation", gen(1))
    shifts = [
        (dy, dx)
        for b in range(2)
        for dy, dx in itertools.product(range(-1, 2), repeat=2)
        if torch.equal(out[b], shifted(img, dy, dx))
    ]
    assert len(shifts) == 2 and (0, 0) not in shifts and shifts[0] != shifts[1]
    dy, dx = shifts[0]
    assert (out[0] == 0).sum() == 16 - (4 - abs(dy)) * (4 - abs(dx))  # exactly the vacated cells


def test_translation_is_differentiable():
    x = torch.randn(8, 2, 8, 8, requires_grad=True)
    diff_augment(x, "translation", gen(0)).sum().backward()
    # each input pixel is copied at most once, so its gradient is 1 (kept) or 0 (shifted out)
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and x.grad.sum() > 0


@pytest.mark.parametrize("H, W", [(8, 8), (8, 6), (7, 5)])
def test_cutout_zeroes_one_half_size_square_per_sample(H, W):
    B = 48
    ch, cw = int(H / 2 + 0.5), int(W / 2 + 0.5)
    x = torch.rand(B, 3, H, W) + 0.5  # no zeros of its own
    out = diff_augment(x, "cutout", gen(0))
    full = 0
    for b in range(B):
        zero = out[b] == 0  # (C, H, W)
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # same for all channels
        assert torch.equal(out[b][~zero], x[b][~zero])  # everything else untouched
        rows = zero[0].any(dim=1).nonzero().flatten()
        cols = zero[0].any(dim=0).nonzero().flatten()
        if len(rows) == 0:
            continue  # square entirely off the image is impossible, checked below
        r0, r1, c0, c1 = rows[0].item(), rows[-1].item() + 1, cols[0].item(), cols[-1].item() + 1
        assert zero[0].sum() == (r1 - r0) * (c1 - c0) and zero[0][r0:r1, c0:c1].all()  # a rectangle
        # full size, unless clipped by the border it touches
        assert r1 - r0 == ch or (r1 - r0 < ch and (r0 == 0 or r1 == H))
        assert c1 - c0 == cw or (c1 - c0 < cw and (c0 == 0 or c1 == W))
        full += (r1 - r0, c1 - c0) == (ch, cw)
    assert (out == 0).flatten(1).any(dim=1).all()  # every sample lost some pixels
    assert full > 0


def test_color_on_grey_flat_image_is_a_per_sample_brightness_shift():
    # deviations from the pixel and image means are all 0, so saturation and contrast do nothing
    x = torch.full((16, 3, 4, 4), 0.2)
    out = diff_augment(x, "color", gen(0))
    shift = out - x  # (B, C, H, W)
    assert_close(shift, shift[:, :1, :1, :1].expand_as(shift))  # one offset per sample
    assert shift.min() >= -0.5 and shift.max() < 0.5
    assert len(shift[:, 0, 0, 0].unique()) == 16


def test_color_is_differentiable():
    x = (torch.rand(4, 3, 8, 8) * 2 - 1).requires_grad_(True)
    diff_augment(x, "color", gen(0)).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_full_policy_is_differentiable():
    x = (torch.rand(4, 3, 8, 8) * 2 - 1).requires_grad_(True)
    diff_augment(x, ALL, gen(0)).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_same_seed_same_output_other_seed_differs():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    a, b = diff_augment(x, ALL, gen(5)), diff_augment(x, ALL, gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, ALL, gen(6)))


def test_randomness_comes_only_from_the_generator():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    a = diff_augment(x, ALL, gen(5))
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(a, diff_augment(x, ALL, gen(5)))


# -- ADA ------------------------------------------------------------------------------------


def P(v):
    return torch.tensor(v)


def ramp(B, C=1, H=8, W=8):
    """B copies of an image with no symmetry: every pixel a different value in [-1, 1)."""
    img = torch.arange(C * H * W, dtype=torch.float32).reshape(C, H, W) / (C * H * W) * 2 - 1
    return img.expand(B, C, H, W).clone()


@pytest.mark.parametrize("C, H, W", [(1, 8, 8), (3, 8, 8), (3, 8, 6)])
def test_ada_at_p0_is_the_identity_bit_exactly(C, H, W):
    x = torch.rand(16, C, H, W) * 2 - 1
    assert torch.equal(ada_augment(x, P(0.0), gen(0)), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [1, 3])
def test_ada_at_p1_changes_every_sample_and_keeps_shape_and_dtype(C, dtype):
    x = (torch.rand(32, C, 16, 16) * 2 - 1).to(dtype)
    out = ada_augment(x, P(1.0), gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert (out != x).flatten(1).any(dim=1).all()  # brightness alone moves every sample


@pytest.mark.parametrize("C", [1, 3])
def test_ada_is_differentiable(C):
    x = (torch.rand(8, C, 8, 8) * 2 - 1).requires_grad_(True)
    ada_augment(x, P(0.5), gen(0)).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ada_same_seed_same_output_and_only_the_generator_matters():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    a = ada_augment(x, P(0.5), gen(5))
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(a, ada_augment(x, P(0.5), gen(5)))
    assert not torch.equal(a, ada_augment(x, P(0.5), gen(6)))


def test_ada_draws_the_same_randoms_whatever_p():
    """So p can change inside a captured graph, and the stream after it does not depend on p."""
    x = torch.rand(4, 3, 8, 8)
    states = []
    for p in (0.0, 0.3, 1.0):
        g = gen(0)
        ada_augment(x, P(p), g)
        states.append(g.get_state())
    assert all(torch.equal(states[0], s) for s in states[1:])


@pytest.mark.parametrize("op", ["xflip", "brightness", "contrast", "cutout", "translate"])
def test_each_ada_op_applies_at_rate_p(op):
    # 2000 asymmetric images: an op that applies changes the image (translate: unless it drew (0, 0))
    x = ramp(2000, C=1, H=16, W=16)
    changed = (ada_augment(x, P(0.5), gen(0), ops=(op,)) != x).flatten(1).any(dim=1).float().mean()
    want = 0.5 * (1 - 1 / 25) if op == "translate" else 0.5  # shifts in -2..2 per axis at 16 px
    assert abs(changed.item() - want) < 0.04  # ~3.5 standard deviations of the binomial share


def test_rot90_is_one_of_the_four_rotations_and_applies_at_three_quarters_of_p():
    x = ramp(2000)
    out = ada_augment(x, P(0.5), gen(0), ops=("rot90",))
    rots = [x[0].rot90(k, (1, 2)) for k in range(4)]
    ks = [next(k for k in range(4) if torch.equal(o, rots[k])) for o in out]
    share = sum(k != 0 for k in ks) / len(ks)
    assert abs(share - 0.5 * 3 / 4) < 0.04 and set(ks) == {0, 1, 2, 3}  # k = 0 is one of the four draws


def test_translate_is_an_integer_shift_with_reflect_padding():
    B, H, W = 64, 8, 16  # |dy| <= 1, |dx| <= 2
    x = ramp(B, C=2, H=H, W=W)
    out = ada_augment(x, P(1.0), gen(0), ops=("translate",))
    padded = torch.nn.functional.pad(x[:1], (2, 2, 1, 1), mode="reflect")[0]  # (C, H + 2, W + 4)
    seen = set()
    for b in range(B):
        matches = [(dy, dx) for dy, dx in itertools.product(range(-1, 2), range(-2, 3))
                   if torch.equal(out[b], padded[:, 1 - dy:1 - dy + H, 2 - dx:2 - dx + W])]
        assert len(matches) == 1, f"sample {b} is not one reflected shift within range"
        seen.add(matches[0])
    assert len(seen) == 15


def test_saturation_only_on_three_channels_and_about_the_grey_value():
    grey = torch.rand(16, 1, 8, 8) * 2 - 1
    assert torch.equal(ada_augment(grey, P(1.0), gen(0), ops=("saturation",)), grey)  # 1 channel: skipped
    grey3 = grey.expand(16, 3, 8, 8)
    assert_close(ada_augment(grey3, P(1.0), gen(0), ops=("saturation",)), grey3)  # no colour to scale
    colour = torch.rand(16, 3, 8, 8) * 2 - 1
    out = ada_augment(colour, P(1.0), gen(0), ops=("saturation",))
    assert_close(out.mean(dim=1), colour.mean(dim=1))  # the grey value is kept
    assert (out != colour).flatten(1).any(dim=1).all()


def test_ada_cutout_fills_mid_grey():
    x = torch.rand(32, 3, 8, 8) + 0.5  # no zeros of its own
    out = ada_augment(x, P(1.0), gen(0), ops=("cutout",))
    assert ((out == 0).flatten(1).sum(1) > 0).all() and torch.equal(out[out != 0], x[out != 0])


def test_ada_refuses_unknown_ops_and_non_images():
    with pytest.raises(ValueError, match="'flip'.*valid: " + ", ".join(ADA_OPS)):
        ada_augment(torch.zeros(1, 1, 4, 4), P(0.5), gen(0), ops=("flip",))
    with pytest.raises(ValueError, match="needs images"):
        ada_augment(torch.zeros(4, 2), P(0.5), gen(0))


def test_ada_state_moves_p_by_the_sign_of_rt_minus_target_and_clamps():
    ada = AdaState(0.5, "cpu", batch=10, target=0.6, kimg=0.1, max_p=0.8)  # step 10 / 100 = 0.1
    p = ada.p
    rt = ada.update(torch.tensor([1.0, 2.0, 3.0, -1.0]))  # r_t = 0.5 < 0.6: down
    assert rt.item() == 0.5 and ada.p is p and abs(p.item() - 0.4) < 1e-6
    for _ in range(9):
        ada.update(torch.ones(4))  # r_t = 1 > 0.6: up, to the ceiling
    assert abs(p.item() - 0.8) < 1e-6
    for _ in range(20):
        ada.update(-torch.ones(4))
    assert p.item() == 0.0  # the floor
    fixed = AdaState(0.3, "cpu", batch=10, kimg=0.1, adaptive=False)
    assert fixed.update(torch.ones(4)).item() == 1.0 and abs(fixed.p.item() - 0.3) < 1e-6


def test_ada_state_loads_in_place():
    a, b = AdaState(0.0, "cpu", batch=8), AdaState(0.25, "cpu", batch=8)
    p = a.p
    a.load_state_dict(b.state_dict())
    assert a.p is p and p.item() == 0.25
    b.p.fill_(0.5)  # the state dict is a copy
    assert p.item() == 0.25
