"""pix2pix's and CycleGAN's loss terms computed by hand from the same networks and compared with
what the phase functions (gankit.tasks.translate.phases) optimise and log, in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.tasks import get_task
from gankit.tasks.translate.phases import STATS, cyclegan_phase, pix2pix_phase

SMALL = ["model.g_width=4", "model.d_width=4", "train.batch=4", "translate.g_blocks=1"]
CPU = torch.device("cpu")


def _parts(method, root, *sets):
    """The task's networks (eval mode: no dropout, BatchNorm frozen) and objective for `method`."""
    g = np.random.default_rng(0)
    for sub in ("A", "B"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            Image.fromarray((g.random((16, 16)) * 255).astype(np.uint8)).save(root / sub / f"{i}.png")
    cfg = gankit.load_config(method, overrides=[*SMALL, f"data.source={root}", "device=cpu", *sets])
    task = get_task("translate")
    parts = task.build(cfg, task.load_data(cfg, CPU), CPU)
    for net in parts.nets.values():
        net.eval()
    return cfg.translate, parts


def _images(n=2):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(n, 1, 16, 16, generator=g) * 2 - 1 for _ in range(2))


@pytest.mark.parametrize("sets", [(), ("translate.l1=37", "translate.gan=0.5")])
def test_pix2pix_g_loss_is_gan_times_adv_plus_l1_times_mean_abs_error(sets, float64, tmp_path, step_state, weighted_sum):
    t, parts = _parts("pix2pix", tmp_path, *sets)
    if not sets:  # the paper's weights
        assert (parts.objective.gan, parts.objective.l1) == (1.0, 100.0)
    st = step_state(parts)
    x, y = _images()
    out = dict(zip(STATS, pix2pix_phase(st, x, y)))
    G, D = parts.nets["G"], parts.nets["D"]
    with torch.no_grad():
        fake = G(x)
        real_l, fake_l = D(torch.cat([x, y], 1)).flatten(1), D(torch.cat([x, fake], 1)).flatten(1)
    adv = F.softplus(-fake_l).mean()  # -log sigmoid(D(x, G(x))), every patch a sample
    l1 = (fake - y).abs().mean()
    loss_d = 0.5 * (F.softplus(-real_l).mean() + F.softplus(fake_l).mean())  # halved BCE
    torch.testing.assert_close(out["gan_g"], adv, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["l1"], l1, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["loss_d"], loss_d, rtol=1e-12, atol=0)
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    assert out["cycle"] == 0 and out["idt"] == 0
    for total in (out["loss_g"], st.losses["G"][0]):  # what is logged and what G descends
        weighted_sum(total, {"gan": (t.gan, adv), "l1": (t.l1, l1)})


@pytest.mark.parametrize("sets", [(), ("translate.cycle=4", "translate.identity=0.25", "translate.gan=2")])
def test_cyclegan_g_loss_has_cycle_and_identity_terms_with_their_lambdas(sets, float64, tmp_path, step_state,
                                                                        weighted_sum):
    t, parts = _parts("cyclegan", tmp_path, *sets)
    obj = parts.objective
    assert obj.identity == t.identity * t.cycle  # identity is in units of the cycle weight
    if not sets:  # the paper's weights: lambda 10, identity 0.5 lambda
        assert (obj.gan, obj.cycle, obj.identity) == (1.0, 10.0, 5.0)
    st = step_state(parts)
    a, b = _images()
    out = dict(zip(STATS, cyclegan_phase(st, a, b)))
    G_ab, G_ba, D_a, D_b = (parts.nets[n] for n in ("G_ab", "G_ba", "D_a", "D_b"))
    with torch.no_grad():
        fake_b, fake_a = G_ab(a), G_ba(b)
        gan = (D_b(fake_b) - 1).square().mean() + (D_a(fake_a) - 1).square().mean()  # LSGAN, both directions
        cycle = (G_ba(fake_b) - a).abs().mean() + (G_ab(fake_a) - b).abs().mean()
        idt = (G_ab(b) - b).abs().mean() + (G_ba(a) - a).abs().mean()
        # D: 1/2 [(D(real) - 1)^2 + D(fake)^2] per domain; the pools are empty, so they return this step's fakes
        loss_d = sum(0.5 * (D(real) - 1).square().mean() + 0.5 * D(fake).square().mean()
                     for D, real, fake in ((D_a, a, fake_a), (D_b, b, fake_b)))
    for name, want in (("gan_g", gan), ("cycle", cycle), ("idt", idt), ("loss_d", loss_d)):
        torch.testing.assert_close(out[name], want, rtol=1e-12, atol=0, msg=name)
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    for total in (out["loss_g"], st.losses["G"][0]):
        weighted_sum(total, {"gan": (obj.gan, gan), "cycle": (obj.cycle, cycle), "identity": (obj.identity, idt)})


def test_cyclegan_has_no_identity_term_between_channel_counts(float64, tmp_path, step_state):
    root = tmp_path / "u"
    g = np.random.default_rng(0)
    for sub, shape in (("trainA", (16, 16)), ("trainB", (16, 16, 3))):
        (root / sub).mkdir(parents=True)
        for i in range(4):
            Image.fromarray((g.random(shape) * 255).astype(np.uint8)).save(root / sub / f"{i}.png")
    cfg = gankit.load_config("cyclegan", overrides=[*SMALL, f"data.source={root}", "device=cpu"])
    task = get_task("translate")
    assert task.build(cfg, task.load_data(cfg, CPU), CPU).objective.identity == 0.0
