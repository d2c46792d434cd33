"""The convolutional architectures (dcgan, resnet): shapes, one training step, conditioning,
heads, spectral norm, self-attention. Tiny widths on CPU."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from gankit.errors import GankitError
from gankit.models.base import ConditionalBatchNorm2d
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator, SelfAttention
from gankit.tasks.generate.config import ModelConfig

NETS = {"dcgan": (DCGANGenerator, DCGANDiscriminator), "resnet": (ResNetGenerator, ResNetDiscriminator)}
B = 4


def build(arch, shape, n_classes=0, **kw):
    cfg = ModelConfig(arch=arch, z_dim=16, g_width=8, d_width=8, **kw)
    G_cls, D_cls = NETS[arch]
    return G_cls(cfg, shape, n_classes), D_cls(cfg, shape, n_classes)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def train_step(G, D, x, z, y=None):
    """One D step, then one G step: Adam on the non-saturating BCE of the logits."""
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    od.zero_grad()
    # -log sigma(D(x)) - log(1 - sigma(D(G(z))))
    (F.softplus(-D(x, y)).mean() + F.softplus(D(G(z, y).detach(), y)).mean()).backward()
    od.step()
    og.zero_grad()
    F.softplus(-D(G(z, y), y)).mean().backward()  # -log sigma(D(G(z)))
    og.step()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", [28, 32, 64])
@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_build_shapes_and_one_step(arch, res, channels):
    shape = (channels, res, res)
    G, D = build(arch, shape)
    assert G.in_dim == 16 and G.out_shape == shape
    z = torch.randn(B, G.in_dim)
    x = G(z)
    assert x.shape == (B, *shape) and x.abs().max() <= 1
    assert D(x).shape == (B,) and D.features(x).shape == (B, D.feat_dim)

    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    train_step(G, D, torch.rand(B, *shape) * 2 - 1, z)
    # every parameter is on the path to the loss and moved
    assert all(p.grad is not None for p in [*G.parameters(), *D.parameters()])
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))


@pytest.mark.parametrize("arch, top", [("dcgan", 256), ("resnet", 1024)])
@pytest.mark.parametrize("shape", [(3, 48, 48), (1, 28, 32)])
def test_unsupported_resolution_is_a_user_error(arch, top, shape):
    for cls in NETS[arch]:
        with pytest.raises(GankitError, match=f"'{arch}' builds square images of side 28 or a power of two "
                                              f"from 32 to {top}; the data is {shape[1]}x{shape[2]}"):
            cls(ModelConfig(arch=arch), shape)


def test_dcgan_default_parameter_counts():
    # 28x28x1, by hand. G: 100->128 ch at 7x7 (100*128*49), BN(128), convT 128->64 (128*64*16),
    # BN(64), convT 64->1 (64*16 + 1). D: conv 1->64 (64*16 + 64), conv 64->128 (64*128*16), BN(128),
    # head 128*7*7 -> 1.
    cfg = ModelConfig(arch="dcgan")
    G, D = DCGANGenerator(cfg, (1, 28, 28)), DCGANDiscriminator(cfg, (1, 28, 28))
    assert n_params(G) == 627_200 + 256 + 131_072 + 128 + 1_025 == 759_681
    assert n_params(D) == 1_088 + 131_072 + 256 + 6_273 == 138_689
    # 64x64x3 matches the pytorch/examples DCGAN (3,576,704 and 2,765,568), plus the biases it
    # leaves out: G's output conv (3), D's first conv (64) and D's head (1).
    G, D = DCGANGenerator(cfg, (3, 64, 64)), DCGANDiscriminator(cfg, (3, 64, 64))
    assert n_params(G) == 3_576_704 + 3 and n_params(D) == 2_765_568 + 64 + 1


def test_dcgan_init():
    G, D = build("dcgan", (3, 32, 32))
    convs = [m for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.mean()) < 2e-3 and 0.018 < w.std() < 0.022
    bns = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3 + 2  # G: one per hidden map (4, 8, 16 px); D: every conv but the first
    gamma = torch.cat([m.weight for m in bns])
    assert 0.9 < gamma.min() and gamma.max() < 1.1 and gamma.std() > 0


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_conditional_generator_uses_the_label(arch):
    G, D = build(arch, (1, 28, 28), n_classes=10, conditional=True, d_head="projection")
    assert any(isinstance(m, ConditionalBatchNorm2d) and m.n_classes == 10 for m in G.modules())
    z, y = torch.randn(B, G.in_dim), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="without labels"):
        G(z)
    # conditional BN starts as plain BN (scales 1, shifts 0), so every class looks the same ...
    G.eval()
    with torch.no_grad():
        torch.testing.assert_close(G(z, y), G(z, y + 1))
    # ... until training moves the per-class scales and shifts of the classes it saw
    G.train()
    train_step(G, D, torch.rand(B, 1, 28, 28) * 2 - 1, z, y)
    G.eval()
    with torch.no_grad():
        assert (G(z, torch.zeros_like(y)) - G(z, torch.ones_like(y))).abs().max() > 1e-5


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_unconditional_generator_ignores_labels(arch):
    G, _ = build(arch, (1, 28, 28), n_classes=10)  # labelled data, but conditional=False
    z = torch.randn(B, G.in_dim)
    G.eval()
    with torch.no_grad():
        torch.testing.assert_close(G(z), G(z, torch.arange(B)))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_projection_and_acgan_heads(arch):
    x, y = torch.rand(B, 3, 32, 32) * 2 - 1, torch.arange(B)
    _, D = build(arch, (3, 32, 32), n_classes=10, d_head="projection")
    D.eval()
    with torch.no_grad():
        out = D(x, y)
        assert out.shape == (B,) and not torch.allclose(out, D(x, (y + 1) % 10))
    assert D.aux_dim == 0
    with pytest.raises(ValueError, match="without labels"):
        D(x)

    _, D = build(arch, (3, 32, 32), n_classes=10, d_head="acgan")
    h = D.features(x)
    assert D(x).shape == (B,) and D.aux_dim == 10 and D.aux(h).shape == (B, 10)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_infogan_codes(arch):
    G, D = build(arch, (1, 28, 28), info_cat=10, info_cont=2)
    assert G.in_dim == 16 + 10 + 2 and D.aux_dim == 12
    x = G(torch.randn(B, G.in_dim))
    assert D.aux(D.features(x)).shape == (B, 12)
    # with ACGAN's class logits the codes come after them
    _, D = build(arch, (1, 28, 28), n_classes=10, d_head="acgan", info_cat=10, info_cont=2)
    assert D.aux(D.features(x)).shape == (B, 22)


@pytest.mark.parametrize("res", [28, 32, 64])
@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_spectral_norm_keeps_top_singular_value_at_one(arch, res):
    shape = (3, res, res)
    _, D = build(arch, shape, n_classes=10, d_head="projection", spectral_norm=True, attention=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())  # SN replaces BN in dcgan
    D.train()
    with torch.no_grad():
        for _ in range(5):  # each train-mode forward runs one power iteration per layer
            D(torch.randn(B, *shape), torch.arange(B))
        layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
        sigma = lambda w: torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)  # noqa: E731
        normalised = torch.stack([sigma(m.weight) for m in layers])  # W / sigma(W), as D uses it
        raw = torch.stack([sigma(m.parametrizations.weight.original) for m in layers])
    torch.testing.assert_close(normalised, torch.ones_like(normalised), atol=0.05, rtol=0)
    assert (raw - 1).abs().max() > 0.2  # so the check above is SN's doing, not the init's


def test_attention_blocks_start_as_identity():
    G, D = build("resnet", (3, 32, 32), attention=True, spectral_norm=True)
    attn = [m for m in [*G.modules(), *D.modules()] if isinstance(m, SelfAttention)]
    assert len(attn) == 2 and all(m.gamma.item() == 0 for m in attn)
    h = torch.randn(B, 8, 8, 8)
    torch.testing.assert_close(attn[0](h), h)
    G, D = build("resnet", (3, 32, 32))
    assert not any(isinstance(m, SelfAttention) for m in [*G.modules(), *D.modules()])


def test_attention_matches_a_loop_over_positions():
    a = SelfAttention(16)
    nn.init.constant_(a.gamma, 0.5)
    x = torch.randn(2, 16, 3, 3)
    with torch.no_grad():
        out = a(x)
        q, k, v = (conv(x).flatten(2) for conv in (a.q, a.k, a.v))  # (B, c, 9)
        want = torch.empty(2, 8, 9)
        for b in range(2):
            for i in range(9):  # o_i = sum_j softmax_j(q_i . k_j) v_j
                w = torch.softmax(torch.stack([q[b, :, i] @ k[b, :, j] for j in range(9)]), 0)
                want[b, :, i] = (v[b] * w).sum(1)
        want = x + 0.5 * a.o(want.view(2, 8, 3, 3))
    torch.testing.assert_close(out, want)
