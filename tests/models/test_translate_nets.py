"""The image-to-image networks: the pix2pix U-Net, the PatchGAN, CycleGAN's ResNet generator
and image pool. Shapes, what the skips and the receptive field really connect, parameter
counts by hand, the pool's semantics and checkpoints, one D and one G step per pair."""

import io

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.models.cyclegan import ImagePool, ResnetGenerator
from gankit.models.patchgan import PatchDiscriminator, layers_for, receptive_field
from gankit.models.unet import UNetGenerator

B = 2
CHANNELS = [(1, 1), (1, 3), (3, 1)]


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def patch_side(side, n_layers):
    """A 4x4 conv with padding 1 and stride s: side -> floor((side - 2) / s) + 1."""
    for s in [2] * n_layers + [1, 1]:
        side = (side - 2) // s + 1
    return side


# ---- U-Net ------------------------------------------------------------------------------


@pytest.mark.parametrize("in_ch,out_ch", CHANNELS)
@pytest.mark.parametrize("size,depth", [(28, 5), (32, 5), (64, 6)])
def test_unet_shapes_and_default_depth(size, depth, in_ch, out_ch):
    G = UNetGenerator(in_ch, out_ch, size, width=4)
    assert G.depth == depth
    y = G(torch.rand(B, in_ch, size, size) * 2 - 1)
    assert y.shape == (B, out_ch, size, size) and y.abs().max() <= 1


def test_unet_256_is_eight_deep_and_non_square_sizes_crop_back():
    G = UNetGenerator(3, 3, 256, width=2)
    assert G.depth == 8
    assert G(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    G = UNetGenerator(1, 2, (28, 40), width=4)  # 28 -> 32 rows, 40 -> 64 columns
    assert G.depth == 5 and G(torch.randn(B, 1, 28, 40)).shape == (B, 2, 28, 40)


def test_unet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="norm must be one of batch, instance, none"):
        UNetGenerator(1, 1, 32, norm="layer")
    with pytest.raises(GankitError, match="cannot be reflection-padded"):  # a user's image size or depth
        UNetGenerator(1, 1, 28, depth=7)  # 28 -> 128 would need 50 px of reflection per side


def _input_grad(net, x, i, j):
    """|d net(x)[0, 0, i, j] / dx[0]| summed over channels: (H, W)."""
    x = x.clone().requires_grad_(True)
    net(x)[0, 0, i, j].backward()
    return x.grad[0].abs().sum(0)


@pytest.mark.parametrize("size", [28, 32])
def test_unet_skip_connection_carries_the_neighbourhood_at_full_resolution(size):
    """With every encoder conv but the first zeroed, the deeper path is a constant: an output
    pixel then depends on the input only through the outermost skip, i.e. on the few pixels
    under it (4x4 conv, then 4x4 transposed conv: within 3 px). At 28 px this also checks that
    the padding to 32 is cropped off in place: a misplaced crop shifts the window by 2."""
    G = UNetGenerator(1, 1, size, width=4).eval()
    x = torch.randn(1, 1, size, size)
    i, j = 13, 10
    far = _input_grad(G, x, i, j)
    assert far[0, 0] > 0 and far[-1, -1] > 0  # the 1 x 1 bottleneck sees the whole image
    with torch.no_grad():
        for down in G.down[1:]:
            down[0].weight.zero_()
            if down[0].bias is not None:
                down[0].bias.zero_()
    g = _input_grad(G, x, i, j)
    rows, cols = g.sum(1).nonzero().flatten(), g.sum(0).nonzero().flatten()
    assert g[i, j] > 0
    assert i - 3 <= rows.min() and rows.max() <= i + 3
    assert j - 3 <= cols.min() and cols.max() <= j + 3


def test_unet_dropout_is_off_in_eval_unless_test_dropout():
    G = UNetGenerator(1, 1, 32, width=4)
    x = torch.randn(B, 1, 32, 32)
    G.eval()
    assert torch.equal(G(x), G(x))
    G.test_dropout = True
    assert not torch.equal(G(x), G(x))
    G.test_dropout, G.dropout = False, 0.0
    G.train()
    assert torch.equal(G(x), G(x))  # dropout is the only noise: at p=0, training is deterministic


def test_unet_256_parameter_count():
    # pix2pix's unet_256, 3 -> 3, width 64, batch norm, by hand. Encoder 3-64-128-256-512 x5,
    # BN on all but the first and innermost, bias on those two; decoder 512->512, 1024->512 x3,
    # 1024->256, 512->128, 256->64 (BN each), out 128->3 with bias. The authors' code has
    # 54,413,955: no bias on the first and innermost encoder convs (64 + 512).
    enc = 16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 4 * 512 * 512) + 64 + 512
    enc_bn = 2 * (128 + 256 + 4 * 512)
    dec = 16 * (512 * 512 + 3 * 1024 * 512 + 1024 * 256 + 512 * 128 + 256 * 64 + 128 * 3) + 3
    dec_bn = 2 * (4 * 512 + 256 + 128 + 64)
    assert enc + enc_bn + dec + dec_bn == 54_413_955 + 576
    assert n_params(UNetGenerator(3, 3, 256)) == 54_414_531


# ---- PatchGAN -------------------------------------------------------------------------------


def test_receptive_fields_and_layers_for():
    assert [receptive_field(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]
    assert {s: layers_for(s) for s in (28, 32, 64, 128, 256, 512)} == {
        28: 1, 32: 1, 64: 1, 128: 2, 256: 3, 512: 4}  # the table in patchgan's docstring
    assert layers_for(1) == 1
    with pytest.raises(ValueError, match="at least 1"):
        receptive_field(0)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_empirical_receptive_field(n_layers):
    """The input pixels one central logit depends on form a square of side receptive_field."""
    D = PatchDiscriminator(2, width=4, n_layers=n_layers).eval()  # eval: BN does not mix pixels
    side = receptive_field(n_layers) + 32
    x = torch.randn(1, 2, side, side, requires_grad=True)
    logits = D(x)
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    g = x.grad[0].abs().sum(0)
    rows, cols = g.sum(1).nonzero().flatten(), g.sum(0).nonzero().flatten()
    r = receptive_field(n_layers)
    assert rows.max() - rows.min() + 1 == r and len(rows) == r  # contiguous, no gaps
    assert cols.max() - cols.min() + 1 == r and len(cols) == r
    assert rows.min() > 0 and rows.max() < side - 1  # inside the image: not clipped by the border


@pytest.mark.parametrize("in_ch", [1, 2, 6])
@pytest.mark.parametrize("size", [28, 32, 64, 256])
def test_patch_shapes(size, in_ch):
    n = layers_for(size)
    D = PatchDiscriminator(in_ch, width=4, n_layers=n)
    side = patch_side(size, n)
    assert side == {28: 12, 32: 14, 64: 30, 256: 30}[size]
    assert D(torch.randn(B, in_ch, size, size)).shape == (B, 1, side, side)


def test_patch_parameter_count_and_spectral_norm():
    # pix2pix's basic D on a 3 + 3 channel pair, by hand: 6->64 (bias), 64->128, 128->256,
    # 256->512 (BN each), 512->1 (bias); 4x4 kernels. Equal to the authors' 2,768,705.
    expect = 16 * (6 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512) + 64 + 1 + 2 * (128 + 256 + 512)
    assert n_params(PatchDiscriminator(6)) == expect == 2_768_705
    D = PatchDiscriminator(3, width=4, norm="none", spectral_norm=True)
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())


# ---- ResNet generator -----------------------------------------------------------------------


@pytest.mark.parametrize("in_ch,out_ch", CHANNELS)
@pytest.mark.parametrize("size", [28, 30, 32, 64])
def test_resnet_generator_shapes(size, in_ch, out_ch):
    G = ResnetGenerator(in_ch, out_ch, width=4, n_blocks=2)  # 30: padded to 32 and cropped back
    y = G(torch.rand(B, in_ch, size, size) * 2 - 1)
    assert y.shape == (B, out_ch, size, size) and y.abs().max() <= 1


def test_resnet_generator_parameter_count():
    # CycleGAN's resnet_9blocks, 3 -> 3, width 64, instance norm, by hand: c7s1-64, d128, d256,
    # 9 x R256 (two 3x3 convs each), u128, u64 (3x3 transposed), c7s1-3 with bias. Each of the
    # 25 normalised convs has scale + shift (2C) and no bias; the authors' code has the bias and
    # no scale or shift (11,378,179), C fewer each.
    convs = 49 * 3 * 64 + 9 * (64 * 128 + 128 * 256 + 18 * 256 * 256 + 256 * 128 + 128 * 64) + 49 * 64 * 3 + 3
    norms = 2 * (64 + 128 + 256 + 18 * 256 + 128 + 64)
    assert convs + norms == 11_378_179 + 5_248
    assert n_params(ResnetGenerator(3, 3)) == 11_383_427


def test_translate_nets_take_every_norm():
    for norm in ("batch", "instance", "none"):
        for net, x in ((UNetGenerator(1, 1, 32, width=4, norm=norm), torch.randn(B, 1, 32, 32)),
                       (ResnetGenerator(1, 1, width=4, n_blocks=1, norm=norm), torch.randn(B, 1, 28, 28)),
                       (PatchDiscriminator(1, width=4, n_layers=1, norm=norm), torch.randn(B, 1, 28, 28))):
            assert torch.isfinite(net(x)).all()
    with pytest.raises(ValueError, match="norm must be"):
        ResnetGenerator(1, 1, norm="group")
    with pytest.raises(ValueError, match="norm must be"):
        PatchDiscriminator(1, norm="group")


# ---- image pool -----------------------------------------------------------------------------


def _images(n, start=0):
    """n distinguishable 1x2x2 images: image k is filled with the value k."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def _ids(images):
    return images[:, 0, 0, 0].long().tolist()


def test_pool_fills_first_and_then_swaps_half_the_time():
    pool = ImagePool(5, torch.Generator().manual_seed(0))
    assert torch.equal(pool.query(_images(3)), _images(3))
    out = pool.query(_images(4, start=3))  # 2 fill the pool, 2 go through the full-pool draw
    assert _ids(out)[:2] == [3, 4] and pool.count == 5 and _ids(pool.images)[:3] == [0, 1, 2]
    assert _ids(out)[2] in (5, 0, 1, 2, 3, 4) and _ids(out)[3] in (6, 0, 1, 2, 3, 4)
    assert set(_ids(pool.images)) <= set(range(7))
    swapped = 0
    for t in range(7, 1007):  # one image at a time, as CycleGAN (batch 1)
        before = set(_ids(pool.images))
        k = _ids(pool.query(_images(1, start=t)))[0]
        after = _ids(pool.images)
        if k == t:  # kept: returned itself, the pool unchanged
            assert set(after) == before
        else:  # swapped: an older stored image comes out, the new one takes its slot
            swapped += 1
            assert k in before and k not in after and t in after and set(after) - {t} == before - {k}
    assert 430 < swapped < 570  # p = 1/2: 500 +- 4.4 sigma


def test_pool_batch_semantics_and_shape():
    pool = ImagePool(4, torch.Generator().manual_seed(1))
    pool.query(_images(4).expand(4, 3, 2, 2))
    x = _images(64, start=100).expand(64, 3, 2, 2).clone().requires_grad_(True)
    out = pool.query(x)
    assert out.shape == x.shape
    ids = _ids(out)
    for n, k in enumerate(ids):  # each is itself or an image stored before this call
        assert k == 100 + n or k in (0, 1, 2, 3)
    assert 0 < sum(k < 100 for k in ids) < 64
    # slot s held image s, so a swapped image that returned s drew slot s; each slot that was
    # drawn holds the last image in the batch swapped into it, the others their old image
    expect = list(range(4))
    for n, k in enumerate(ids):
        if k < 100:
            expect[k] = 100 + n
    assert _ids(pool.images) == expect and expect != list(range(4))
    out.sum().backward()  # gradients reach the images returned as themselves, only
    torch.testing.assert_close(x.grad[:, 0, 0, 0], torch.tensor([float(k >= 100) for k in ids]))
    assert ImagePool(0).query(x) is x


def test_pool_is_reproducible_and_round_trips_through_a_checkpoint():
    def run(pool, start, n=6):
        return torch.cat([pool.query(_images(3, start=start + 3 * t)) for t in range(n)])

    a, b = ImagePool(8, torch.Generator().manual_seed(7)), ImagePool(8, torch.Generator().manual_seed(7))
    assert torch.equal(run(a, 0), run(b, 0))
    c = ImagePool(8, torch.Generator().manual_seed(8))
    run(c, 0)
    assert not torch.equal(run(a, 100), run(c, 100))  # another seed, other draws
    state = a.state_dict()
    future = run(a, 200)  # the state is a snapshot: these queries leave it as it was
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    d = ImagePool(8, torch.Generator())
    d.load_state_dict(torch.load(buf, weights_only=True))
    assert d.count == 8
    assert torch.equal(run(d, 200), future)
    with pytest.raises(ValueError, match="holds 8 images"):
        ImagePool(4).load_state_dict(a.state_dict())


def test_full_pool_query_reads_nothing_back(no_host_reads):
    pool = ImagePool(4, torch.Generator().manual_seed(0))
    pool.query(_images(4))
    with no_host_reads():
        pool.query(_images(5, start=10))
    for read in (lambda: bool(pool.images.sum() > 0), lambda: pool.images[pool.images > 5]):
        with pytest.raises(AssertionError, match="host read"), no_host_reads():
            read()  # the check sees these reads


# ---- one D and one G step per pair ----------------------------------------------------------


def _adam(m):
    return torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999))


def _snapshot(*nets):
    return [p.detach().clone() for m in nets for p in m.parameters()]


def _moved_and_finite(before, *nets):
    after = [p for m in nets for p in m.parameters()]
    assert all(p.grad is not None and torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("in_ch,out_ch", CHANNELS)
@pytest.mark.parametrize("size", [28, 32])
def test_pix2pix_one_d_and_one_g_step(size, in_ch, out_ch):
    G = UNetGenerator(in_ch, out_ch, size, width=4)
    D = PatchDiscriminator(in_ch + out_ch, width=4, n_layers=layers_for(size))  # judges the pair
    x, y = torch.rand(B, in_ch, size, size) * 2 - 1, torch.rand(B, out_ch, size, size) * 2 - 1
    before = _snapshot(G, D)
    od, og = _adam(D), _adam(G)
    torch.manual_seed(1)  # dropout masks: the same again for the forward after the step
    fake = G(x)
    # -log sigma(D(x, y)) - log(1 - sigma(D(x, G(x)))), per patch; real and fake apart (BN)
    d_loss = (F.softplus(-D(torch.cat([x, y], 1))).mean()
              + F.softplus(D(torch.cat([x, fake.detach()], 1))).mean())
    od.zero_grad()
    d_loss.backward()
    od.step()
    # -log sigma(D(x, G(x))) + 100 |G(x) - y|_1
    g_loss = F.softplus(-D(torch.cat([x, fake], 1))).mean() + 100 * (fake - y).abs().mean()
    og.zero_grad()
    g_loss.backward()
    og.step()
    _moved_and_finite(before, G, D)
    with torch.no_grad():  # the L1 term dominates: one step at lr 2e-4 already lowers it
        torch.manual_seed(1)
        assert (G(x) - y).abs().mean() < (fake - y).abs().mean()


@pytest.mark.parametrize("in_ch,out_ch", CHANNELS)
def test_cyclegan_one_d_and_one_g_step(in_ch, out_ch):
    size = 28
    G_ab, G_ba = (ResnetGenerator(in_ch, out_ch, width=4, n_blocks=2),
                  ResnetGenerator(out_ch, in_ch, width=4, n_blocks=2))
    D_b = PatchDiscriminator(out_ch, width=4, n_layers=layers_for(size), norm="instance")
    a, b = torch.rand(B, in_ch, size, size) * 2 - 1, torch.rand(B, out_ch, size, size) * 2 - 1
    pool = ImagePool(1, torch.Generator().manual_seed(0))  # full after one image: both paths run
    before = _snapshot(G_ab, G_ba, D_b)
    od, og = _adam(D_b), torch.optim.Adam([*G_ab.parameters(), *G_ba.parameters()], 2e-4, betas=(0.5, 0.999))
    fake_b = G_ab(a)
    # least squares: (D(b) - 1)^2 + D(pooled fake)^2, halved as in CycleGAN
    d_loss = 0.5 * ((D_b(b) - 1).square().mean() + D_b(pool.query(fake_b).detach()).square().mean())
    od.zero_grad()
    d_loss.backward()
    od.step()
    # (D(G(a)) - 1)^2 + 10 |G_ba(G_ab(a)) - a|_1
    g_loss = (D_b(fake_b) - 1).square().mean() + 10 * (G_ba(fake_b) - a).abs().mean()
    og.zero_grad()
    g_loss.backward()
    og.step()
    _moved_and_finite(before, G_ab, G_ba, D_b)
    assert pool.count == 1 and torch.isfinite(d_loss) and torch.isfinite(g_loss)
