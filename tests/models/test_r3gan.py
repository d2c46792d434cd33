"""The r3gan architecture (Huang et al. 2024): shapes and one RpGAN + R1 + R2 step at every
resolution, fix-up initialisation, [1, 2, 1] resampling, no normalisation layers, and the preset
trained end to end on fake data. Tiny widths on CPU."""

import json
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.models.r3gan import R3GANDiscriminator, R3GANGenerator, ResBlock, down2, stage_widths, up2
from gankit.regularizers import r1_penalty
from gankit.tasks.generate.config import ModelConfig

B = 4
LEAK_GAIN = math.sqrt(2 / (1 + 0.2 ** 2))  # He gain of a LeakyReLU(0.2)


def build(shape, n_classes=0, **kw):
    kw = {"z_dim": 16, "g_width": 8, "d_width": 8, **kw}
    cfg = ModelConfig(arch="r3gan", **kw)
    return R3GANGenerator(cfg, shape, n_classes), R3GANDiscriminator(cfg, shape, n_classes)


def train_step(G, D, og, od, x, z, y=None, gamma=0.1):
    """One D step (RpGAN + gamma/2 (R1 + R2)), then one G step (RpGAN), as the r3gan preset
    trains; returns the two losses."""
    rp = LOSSES["rpgan"]
    fake = G(z, y)
    loss_d = rp.d(D(x, y), D(fake.detach(), y))  # softplus(-(D(x) - D(G(z))))
    loss_d = loss_d + 0.5 * gamma * (r1_penalty(D, x, y) + r1_penalty(D, fake.detach(), y))
    od.zero_grad()
    loss_d.backward()
    od.step()
    loss_g = rp.g(D(fake, y), D(x, y))  # softplus(-(D(G(z)) - D(x)))
    og.zero_grad()
    loss_g.backward()
    og.step()
    return loss_d.detach(), loss_g.detach()


def still_after_one_step(net, name):
    """Parameters one step cannot move. Fix-up: a block's first two convs get zero gradient while
    its last conv is zero. And with every block the identity, D is linear in x, so a bias of D
    adds the same constant to D(x) and D(G(z)), which the relativistic loss (a function of
    D(x) - D(G(z))) and the input gradients of R1/R2 cannot see."""
    return ".expand." in name or ".conv." in name or (net == "D" and name.endswith("bias"))


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", [28, 32, 64])
def test_build_shapes_and_two_steps(res, channels, conditional):
    shape = (channels, res, res)
    n_classes = 10 if conditional else 0
    kw = {"conditional": True, "d_head": "projection"} if conditional else {}
    G, D = build(shape, n_classes, **kw)
    assert G.in_dim == 16 and G.out_shape == shape
    z = torch.randn(B, G.in_dim)
    y = torch.arange(B) if conditional else None
    x = G(z, y)
    assert x.shape == (B, *shape) and x.abs().max() <= 1  # tanh out (model.g_out default)
    assert D(x, y).shape == (B,) and D.features(x).shape == (B, D.feat_dim) == (B, D.widths[0])

    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.99))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.99))
    real = torch.rand(B, *shape) * 2 - 1
    nets = {"G": G, "D": D}
    before = {(k, n): p.detach().clone() for k, net in nets.items() for n, p in net.named_parameters()}
    losses = train_step(G, D, og, od, real, z, y)
    assert all(torch.isfinite(v) for v in losses)
    assert all(p.grad is not None for net in nets.values() for p in net.parameters())
    for k, net in nets.items():
        for n, p in net.named_parameters():
            assert torch.equal(before[k, n], p) == still_after_one_step(k, n), (k, n)
    # The last convs are no longer zero, so D is no longer linear: now every parameter moves but
    # the two biases of D that nothing nonlinear follows (its last block's last conv, its logit's):
    # each adds one constant to every logit, which the relativistic loss never sees.
    train_step(G, D, og, od, real, z, y)
    last = [n for n, m in D.named_modules() if isinstance(m, ResBlock)][-1]
    for k, net in nets.items():
        for n, p in net.named_parameters():
            constant = k == "D" and n in ("heads.linear.bias", f"{last}.project.bias")
            assert torch.equal(before[k, n], p) == constant, (k, n)


def test_stage_widths_double_per_coarser_scale_up_to_the_cap():
    assert stage_widths(16, 3, 8) == [64, 32, 16]
    assert stage_widths(16, 5, 4) == [64, 64, 64, 32, 16]
    assert stage_widths(768, 4, 1) == [768] * 4  # the paper's CIFAR-10 nets
    G, D = build((1, 28, 28), g_width=8, d_width=4, width_cap=2)
    assert G.widths == [16, 16, 8] and D.widths == [8, 8, 4]  # 7, 14, 28 px
    G, D = build((3, 64, 64), g_width=8, d_width=8, width_cap=8)
    assert G.widths == D.widths == [64, 64, 32, 16, 8]  # 4, 8, 16, 32, 64 px


def test_fixup_block_starts_as_the_identity():
    block = ResBlock(32, expansion=2, group=16, leak=0.2, scale=0.5)
    assert block.conv.groups == 4  # 64 hidden channels, 16 per group
    x = torch.randn(3, 32, 5, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    G, D = build((3, 32, 32), n_classes=10, conditional=True, d_head="projection")
    blocks = [m for net in (G, D) for m in net.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == 2 * 4 * 2  # two nets, 4 stages, model.blocks = 2
    assert all(not m.project.weight.any() and not m.project.bias.any() for m in blocks)


def test_fixup_scales_the_he_init_by_l_to_the_minus_quarter():
    # 28 px: 3 stages of 3 blocks, L = 9 per network
    G, D = build((1, 28, 28), g_width=64, d_width=64, width_cap=4, blocks=3)
    L = 9
    for net in (G, D):
        block = max((m for m in net.modules() if isinstance(m, ResBlock)), key=lambda m: m.expand.weight.numel())
        for conv in (block.expand, block.conv):
            w = conv.weight  # (out, in / groups, k, k)
            he_std = LEAK_GAIN / math.sqrt(w[0].numel())  # the default: He for a LeakyReLU(0.2)
            ratio = (w.std() / he_std).item()
            assert ratio == pytest.approx(L ** -0.25, rel=0.03), (type(net).__name__, conv)
            assert not conv.bias.any()


def test_resampling_with_the_121_filter():
    c = torch.full((2, 3, 8, 8), 0.7)
    torch.testing.assert_close(down2(c), torch.full((2, 3, 4, 4), 0.7))
    torch.testing.assert_close(up2(c), torch.full((2, 3, 16, 16), 0.7))
    # by hand: per axis out[j] = (x[2j-1] + 2 x[2j] + x[2j+1]) / 4 with x[-1] = x[0]; rows of
    # arange(16).view(4, 4) give [4r + 0.25, 4r + 2], then the columns the same way
    x = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(down2(x), torch.tensor([[[[1.25, 3.0], [8.25, 10.0]]]]))
    # up: out[2i] = x[i], out[2i+1] = (x[i] + x[i+1]) / 2, the last neighbour repeating the edge
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    torch.testing.assert_close(up2(x), torch.tensor([[[[0.0, 0.5, 1.0, 1.0],
                                                       [1.0, 1.5, 2.0, 2.0],
                                                       [2.0, 2.5, 3.0, 3.0],
                                                       [2.0, 2.5, 3.0, 3.0]]]]))
    with pytest.raises(ValueError, match="even"):
        down2(torch.zeros(1, 1, 7, 7))


def test_no_normalisation_layers():
    G, D = build((3, 32, 32), n_classes=10, conditional=True, d_head="projection")
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm,
             nn.LocalResponseNorm)
    modules = [m for net in (G, D) for m in net.modules()]
    assert not any(isinstance(m, norms) or parametrize.is_parametrized(m) for m in modules)
    assert not D.mixes_batch  # so D.judge runs real and fake in one forward
    with pytest.raises(GankitError, match="spectral_norm"):
        build((3, 32, 32), spectral_norm=True)


def test_conditional_generator_uses_the_label_and_unconditional_ignores_it():
    G, _ = build((1, 28, 28), n_classes=10, conditional=True, d_head="projection")
    z, y = torch.randn(B, G.in_dim), torch.arange(B)
    with pytest.raises(ValueError, match="without labels"):
        G(z)
    with torch.no_grad():  # the class embedding feeds the basis from the start
        assert (G(z, y) - G(z, y + 1)).abs().max() > 1e-4
    G, _ = build((1, 28, 28), n_classes=10)  # labelled data, conditional false
    with torch.no_grad():
        torch.testing.assert_close(G(z), G(z, y))


def test_projection_term_does_not_grow_with_width():
    x, y = torch.rand(64, 3, 32, 32) * 2 - 1, torch.randint(10, (64,))
    spread = []
    for w in (16, 256):
        _, D = build((3, 32, 32), n_classes=10, d_width=w, width_cap=1, d_head="projection", blocks=1)
        with torch.no_grad():
            h = D.features(x)  # (B, w)
            spread.append(((D.heads.embed(y) * h).sum(1).std() / h.std()).item())
    # embed(y)^T h over w channels of N(0, 1/w) weights: std ~ std(h) at every width (N(0, 1)
    # weights would give sqrt(w) std(h): 4 and 16)
    assert all(0.3 < s < 3 for s in spread), spread


def test_linear_output_when_g_out_is_none():
    G, _ = build((3, 32, 32), g_out="none", g_width=32)
    with torch.no_grad():
        x = G(torch.randn(64, G.in_dim))
    assert x.abs().max() > 1  # no tanh: the paper's linear output


def test_user_errors_are_one_line():
    with pytest.raises(GankitError, match="model.group = 16 must divide"):
        build((1, 28, 28), g_width=12)  # 24 hidden channels at 28 px
    cfg = ModelConfig(arch="r3gan")
    with pytest.raises(GankitError, match="side 28 or a power of two from 32 to 1024; the data is 3x48x48"):
        build_models(cfg, (3, 48, 48))
    with pytest.raises(GankitError, match="width_cap = 0"):
        load_config("r3gan", overrides=["model.width_cap=0"])


def test_unset_resolution_picks_the_nearest_supported_size():
    from gankit.tasks.generate.task import GenerateTask

    cfg = load_config("r3gan", overrides=["data.source=fake:1x30x30:8", "data.resolution=null"])
    data = GenerateTask().load_data(cfg, "cpu")
    assert data.shape == (1, 32, 32) and any("nearest" in n for n in data.notes)  # ties go to the larger


@pytest.mark.parametrize("preset", ["r3gan", "r3gan-cifar"])
def test_preset_trains_and_logs_r1_and_r2(preset, tmp_path):
    over = ["data.source=fake:1x28x28:32", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch=4",
            "train.steps=2", "log.every=1", "log.grid_n=4", "log.progress=false", "device=cpu"]
    cfg = load_config(preset, overrides=over)
    assert cfg.train.loss == "rpgan" and cfg.reg.r1 == cfg.reg.r2 > 0 and cfg.reg.r1_every == 1
    run = gankit.train(cfg, tmp_path / preset)
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_d" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:  # both penalties computed on every step, and positive (D's input gradient is not 0)
        assert r["r1"] > 0 and r["r2"] > 0 and math.isfinite(r["r1"] + r["r2"])
    res = cfg.data.resolution
    assert run.sample(2, seed=0, **({"label": 3} if cfg.model.conditional else {})).shape == (2, 1, res, res)
