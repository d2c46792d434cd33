"""The super-resolution networks: shapes per scale and channels, the untrained G as bicubic
upscaling, ICNR's nearest-neighbour start, parameter counts by hand, D on any size and its
features, and one G and one D Adam step."""

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.models.srresnet import SRDiscriminator, SRResNet, down_pairs

B = 2


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def bicubic(x, scale):
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


# ---- generator ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scale,h,H", [(4, 7, 28), (2, 14, 28), (4, 24, 96), (3, 8, 24), (8, 4, 32)])
def test_generator_shapes(scale, h, H, channels):
    G = SRResNet(channels, scale, width=8, n_blocks=2)
    assert G(torch.rand(B, channels, h, h) * 2 - 1).shape == (B, channels, H, H)
    assert G(torch.rand(1, channels, h, h + 3) * 2 - 1).shape == (1, channels, H, scale * (h + 3))


def test_generator_rejects_an_unknown_scale():
    with pytest.raises(GankitError, match="scale must be one of 2, 3, 4, 8; got 5"):
        SRResNet(scale=5)


@pytest.mark.parametrize("scale", [2, 4])
def test_untrained_generator_is_close_to_bicubic_and_exactly_bicubic_without_a_tail(scale):
    G = SRResNet(3, scale, width=32, n_blocks=4).eval()
    x = torch.rand(B, 3, 12, 12) * 2 - 1
    with torch.no_grad():
        up, y = bicubic(x, scale), G(x)
        assert (y - up).abs().max() < 0.02 and (y - up).abs().mean() < 0.005
        assert (y - up).abs().mean() > 0  # the residual path is live
        G.tail.weight.zero_()
        G.tail.bias.zero_()
        torch.testing.assert_close(G(x), up)  # the skip is torch's bicubic of the input, aligned
        # without the skip, the untrained net is nowhere near an upscale
        far = SRResNet(3, scale, width=32, n_blocks=4, skip=False).eval()(x)
    assert (far - up).abs().mean() > 0.1


def test_icnr_makes_each_sub_pixel_group_equal_at_init():
    G = SRResNet(1, 4, width=8, n_blocks=1)
    with torch.no_grad():
        h = G.up[:3](torch.randn(1, 8, 5, 6))  # conv, PixelShuffle(2), PReLU: (1, 8, 10, 12)
    assert h.shape == (1, 8, 10, 12)
    blocks = h.unfold(2, 2, 2).unfold(3, 2, 2)  # (1, 8, 5, 6, 2, 2): each 2 x 2 group
    torch.testing.assert_close(blocks, blocks[..., :1, :1].expand_as(blocks))
    assert h.std() > 0


def g_params(c, scale, w, n):
    head = conv(c, w, 9) + 1  # + PReLU's one slope
    body = n * 2 * conv(w, w, 3) + conv(w, w, 3)
    rs = [3] if scale == 3 else [2] * {2: 1, 4: 2, 8: 3}[scale]
    up = sum(conv(w, w * r * r, 3) + 1 for r in rs)
    return head + body + up + conv(w, c, 9)


def test_generator_parameter_counts():
    assert n_params(SRResNet()) == g_params(3, 4, 64, 16) == 1_545_222  # SRGAN's ~1.5M
    for args in [(1, 2, 16, 3), (3, 3, 8, 2), (3, 8, 8, 1)]:
        assert n_params(SRResNet(*args)) == g_params(*args)


# ---- discriminator -----------------------------------------------------------------------


def test_down_pairs_follow_the_crop_size():
    assert [down_pairs(s) for s in (96, 128, 48, 47, 28, 24, 23, 12, 11, 4)] == [4, 4, 4, 3, 3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_discriminator_gives_one_logit_per_image_at_any_size(channels, norm):
    D = SRDiscriminator(channels, width=4, size=96, norm=norm)
    for side in (96, 70):
        assert D(torch.randn(B, channels, side, side)).shape == (B,)
    assert D(torch.randn(B, channels, 40, 56)).shape == (B,)
    assert D.mixes_batch == (norm == "batch")


def test_discriminator_features_are_every_block_in_order():
    D = SRDiscriminator(3, width=4, size=28)  # 3 pairs
    feats = D.features(torch.randn(B, 3, 28, 28))
    assert [tuple(f.shape) for f in feats] == [(B, 4, 28, 28), (B, 4, 14, 14), (B, 8, 14, 14), (B, 8, 7, 7),
                                              (B, 16, 7, 7), (B, 16, 4, 4)]
    D.eval()
    x = torch.randn(B, 3, 28, 28)
    logits = D(x)
    torch.testing.assert_close(D.head(D.features(x)[-1]), logits)  # the maps, reused
    torch.testing.assert_close(logits, D.dense(D.features(x)[-1].mean((2, 3))).squeeze(1))  # average pooling


def d_params(c, w, pairs, norm=True):
    total, cin = 0, c
    for i in range(pairs):
        for first in (i == 0, False):
            normed = norm and not first
            total += conv(cin, w * 2 ** i, 3, bias=not normed) + (2 * w * 2 ** i if normed else 0)
            cin = w * 2 ** i
    return total + cin * 16 * w + 16 * w + 16 * w + 1


def test_discriminator_parameter_counts():
    assert n_params(SRDiscriminator()) == d_params(3, 64, 4) == 5_213_569
    assert n_params(SRDiscriminator(1, 8, 24, norm="none")) == d_params(1, 8, 3, norm=False)


def test_discriminator_rejects_an_unknown_norm():
    with pytest.raises(ValueError, match="norm must be one of"):
        SRDiscriminator(norm="layer")


# ---- one step each -----------------------------------------------------------------------


def _step_changes_everything(net, loss_fn):
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss0 = loss_fn()
    opt.zero_grad()
    loss0.backward()
    opt.step()
    for k, p in net.named_parameters():
        assert torch.isfinite(p).all(), k
        assert not torch.equal(p, before[k]), f"{k} did not change"
    with torch.no_grad():
        loss1 = loss_fn()
    assert torch.isfinite(loss1) and loss1 < loss0, (float(loss0), float(loss1))


def test_one_generator_step_reduces_l1():
    G = SRResNet(3, 4, width=8, n_blocks=2)
    lr, hr = torch.rand(B, 3, 8, 8) * 2 - 1, torch.rand(B, 3, 32, 32) * 2 - 1
    _step_changes_everything(G, lambda: (G(lr) - hr).abs().mean())


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_one_discriminator_step_reduces_bce(norm):
    D = SRDiscriminator(3, width=4, size=24, norm=norm)
    real, fake = torch.rand(B, 3, 24, 24) * 2 - 1, torch.rand(B, 3, 24, 24) * 0.2

    def loss():  # reals and fakes in separate calls: BatchNorm normalises each batch on its own
        return (F.binary_cross_entropy_with_logits(D(real), torch.ones(B))
                + F.binary_cross_entropy_with_logits(D(fake), torch.zeros(B)))

    _step_changes_everything(D, loss)
