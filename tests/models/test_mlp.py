import pytest
import torch

from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.tasks.generate.config import ModelConfig
from gankit.tasks.generate.phases import STAT_NAMES, Batch, Objective, gan_step

NS = Objective(LOSSES["ns"])


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_seed_networks_shapes_and_parameter_counts():
    G, D = build_models(ModelConfig(), (1, 28, 28))
    # Counted by hand from the tutorial's layer sizes (weights + biases):
    # G: 100*256+256 + 256*512+512 + 512*1024+1024 + 1024*784+784
    assert n_params(G) == 25_856 + 131_584 + 525_312 + 803_600 == 1_486_352
    # D: 784*1024+1024 + 1024*512+512 + 512*256+256 + 256*1+1
    assert n_params(D) == 803_840 + 524_800 + 131_328 + 257 == 1_460_225
    z = torch.randn(5, 100)
    x = G(z)
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    kinds = [type(m).__name__ for m in D.body]
    assert kinds.count("Dropout") == 3 and kinds.count("LeakyReLU") == 3 and "Sigmoid" not in kinds
    assert type(G.net[-1]).__name__ == "Tanh"


def test_points_and_rgb_shapes():
    cfg = ModelConfig(g_hidden=(16,), d_hidden=(16,))
    G, D = build_models(cfg, (2,))
    assert G(torch.randn(3, 100)).shape == (3, 2) and D(torch.randn(3, 2)).shape == (3,)
    G, D = build_models(cfg, (3, 8, 8))
    assert G(torch.randn(3, 100)).shape == (3, 3, 8, 8)


def test_one_step_changes_both_networks():
    G, D = build_models(ModelConfig(), (1, 28, 28))
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    stats = gan_step(G, D, og, od, Batch(x, None, torch.randn(8, 100)), NS)
    assert stats.shape == (len(STAT_NAMES),) and torch.isfinite(stats).all()
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert all(p.requires_grad for p in D.parameters())  # D unfrozen after the G phase


def test_g_phase_leaves_d_untouched():
    """The G update must not move D: with lr_d = 0 D stays put while G changes."""
    G, D = build_models(ModelConfig(d_dropout=0.0), (1, 28, 28))
    og = torch.optim.Adam(G.parameters(), 1e-3)
    od = torch.optim.SGD(D.parameters(), lr=0.0)
    d0 = [p.detach().clone() for p in D.parameters()]
    gan_step(G, D, og, od, Batch(torch.zeros(4, 1, 28, 28), None, torch.randn(4, 100)), NS)
    assert all(torch.equal(a, b) for a, b in zip(d0, D.parameters()))


def test_step_stats_are_what_they_say():
    """With G and D frozen (lr 0), the returned scalars equal the losses computed by hand."""
    torch.manual_seed(1)
    G, D = build_models(ModelConfig(d_dropout=0.0, g_hidden=(8,), d_hidden=(8,)), (2,))
    og, od = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)
    x, z = torch.randn(6, 2), torch.randn(6, 100)
    stats = dict(zip(STAT_NAMES, gan_step(G, D, og, od, Batch(x, None, z), NS)))
    with torch.no_grad():
        r, f = D(x), D(G(z))
    want = {"loss_d": LOSSES["ns"].d(r, f), "loss_g": LOSSES["ns"].g(f), "d_real": torch.sigmoid(r).mean(),
            "d_fake": torch.sigmoid(f).mean(), "acc_real": (r > 0).float().mean(),
            "acc_fake": (f < 0).float().mean(), "gp": torch.tensor(0.0), "r1_n": torch.tensor(0.0)}
    for k, v in want.items():
        torch.testing.assert_close(stats[k], v, msg=k)


@pytest.mark.parametrize("arch", ["mlp", "mlp-bn"])
@pytest.mark.parametrize("res", [28, 32, 64])
@pytest.mark.parametrize("ch", [1, 3])
def test_mlp_archs_build_and_step_at_every_size(arch, res, ch):
    cfg = ModelConfig(arch=arch, z_dim=8, g_hidden=(16,), d_hidden=(16,))
    G, D = build_models(cfg, (ch, res, res))
    assert G(torch.randn(4, 8)).shape == (4, ch, res, res)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == (arch == "mlp-bn")
    og, od = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    g0, d0 = [p.detach().clone() for p in G.parameters()], [p.detach().clone() for p in D.parameters()]
    gan_step(G, D, og, od, Batch(torch.rand(4, ch, res, res) * 2 - 1, None, torch.randn(4, 8)), NS)
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))


def test_conditional_mlp_and_heads():
    cfg = ModelConfig(z_dim=8, g_hidden=(16,), d_hidden=(16,), conditional=True, d_head="projection",
                      d_dropout=0.0)
    G, D = build_models(cfg, (1, 28, 28), n_classes=10)
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    assert G(z, y).shape == (4, 1, 28, 28) and G.net[0].in_features == 8 + 10
    x = torch.randn(4, 1, 28, 28)
    assert not torch.equal(D(x, y), D(x, torch.tensor([4, 5, 6, 7])))  # the label matters
    with pytest.raises(ValueError):
        G(z)
