"""The stylegan2 arch: build and one step per resolution, weight demodulation, truncation, w_avg,
style mixing, the path-length penalty against a hand computation, and a preset run that logs
the penalty and resumes exactly. Tiny widths on CPU."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.config import load_config
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.models.stylegan2 import (ModulatedConv2d, StyleGAN2Discriminator, StyleGAN2Generator, SynthesisLayer,
                                     ToRGB, minibatch_std)
from gankit.tasks.generate.config import ModelConfig
from gankit.tasks.generate.phases import STAT_NAMES, Batch, Objective, PathLengthMean, gan_step, path_length_penalty
from gankit.tasks.generate.task import style_mix
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

B = 4
NS = Objective(loss=LOSSES["ns"])


def build(shape, n_classes=0, **kw) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    cfg = ModelConfig(arch="stylegan2", z_dim=8, w_dim=8, mapping_layers=2, g_width=4, d_width=4, **kw)
    return StyleGAN2Generator(cfg, shape, n_classes), StyleGAN2Discriminator(cfg, shape, n_classes)


def mix_for(G, n, cut):
    return torch.randn(n, G.in_dim), torch.as_tensor(cut, dtype=torch.int64).expand(n).clone()


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", [28, 32, 64])
def test_build_shapes_and_one_step(res, channels, conditional):
    shape = (channels, res, res)
    n_classes = 3 if conditional else 0
    kw = {"conditional": True, "d_head": "projection"} if conditional else {}
    G, D = build(shape, n_classes, **kw)
    n_up = int(math.log2(res // (7 if res == 28 else 4)))
    assert G.num_ws == 2 * n_up + 2 and G.w_avg.shape == (8,)
    y = torch.randint(n_classes, (B,)) if conditional else None
    z = torch.randn(B, G.in_dim)
    x = G(z, y)
    assert x.shape == (B, *shape) and x.abs().max() <= 1 and torch.isfinite(x).all()
    assert D(x, y).shape == (B,) and D.features(x).shape == (B, D.feat_dim)

    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    og = torch.optim.Adam(G.parameters(), 2e-3, betas=(0.0, 0.99))
    od = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.0, 0.99))
    b = Batch(torch.rand(B, *shape) * 2 - 1, y, z, mix=mix_for(G, B, 2))
    stats = gan_step(G, D, og, od, b, NS)
    assert stats.shape == (len(STAT_NAMES),) and torch.isfinite(stats).all()
    # every parameter (noise strengths, the class embedding, the mapping at lr x 0.01) is trained
    assert all(not torch.equal(a, p) for a, p in zip(g0, G.parameters()))
    assert all(not torch.equal(a, p) for a, p in zip(d0, D.parameters()))


def test_conditional_generator_needs_labels_and_uses_them():
    G, _ = build((1, 28, 28), 3, conditional=True, d_head="projection")
    G.eval()
    z = torch.randn(2, G.in_dim)
    with pytest.raises(ValueError, match="without labels"):
        G(z)
    a, b = G(z, torch.tensor([0, 0]), noise="const"), G(z, torch.tensor([1, 1]), noise="const")
    assert not torch.allclose(a, b)


def test_demodulation_gives_unit_weights_and_ignores_the_style_scale():
    torch.manual_seed(1)
    conv = ModulatedConv2d(5, 7, 3, w_dim=4)
    s = torch.randn(3, 5) + 1
    w = conv.weights(s)  # (3, 7, 5, 3, 3)
    torch.testing.assert_close(w.flatten(2).norm(dim=2), torch.ones(3, 7))
    x = torch.randn(3, 5, 6, 6)
    for fused in (True, False):
        conv.fused = fused
        torch.testing.assert_close(conv.modulate(x, 10 * s), conv.modulate(x, s), rtol=1e-5, atol=1e-5)
    # both code paths are the per-sample conv with the demodulated weights
    want = torch.cat([F.conv2d(x[i:i + 1], w[i], padding=1) for i in range(3)])
    for fused in (True, False):
        conv.fused = fused
        torch.testing.assert_close(conv.modulate(x, s), want, rtol=1e-5, atol=1e-5)
    # without demodulation the style's scale does show (so the check above can fail)
    plain = ModulatedConv2d(5, 7, 3, w_dim=4, demod=False)
    torch.testing.assert_close(plain.modulate(x, 10 * s), 10 * plain.modulate(x, s), rtol=1e-5, atol=1e-4)


def test_layers_fused_and_unfused_agree():
    """Training (scale-conv-scale, toRGB as a matmul) and eval (grouped conv) compute one function."""
    torch.manual_seed(2)
    layer, rgb = SynthesisLayer(3, 4, 5, 6, 0, 0.2), ToRGB(4, 3, 6, 1)
    with torch.no_grad():
        layer.bias.normal_(), rgb.bias.normal_(), layer.noise_strength.fill_(0.5)
    x, w = torch.randn(2, 3, 5, 5), torch.randn(2, 6)
    out = {}
    for fused in (True, False):
        layer.conv.fused = rgb.conv.fused = fused
        h = layer(x, w, noise="const")
        out[fused] = (h, rgb(h, w))
    for a, b in zip(out[True], out[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the synthesis layer by hand: lrelu(conv + noise + bias) * sqrt(2)
    s = layer.conv.affine(w)
    hand = F.leaky_relu(torch.cat([F.conv2d(x[i:i + 1], layer.conv.weights(s)[i], padding=1) for i in range(2)])
                        + 0.5 * layer.noise_const + layer.bias[None, :, None, None], 0.2) * math.sqrt(2)
    torch.testing.assert_close(out[False][0], hand, rtol=1e-5, atol=1e-5)


def test_truncation():
    G, _ = build((1, 28, 28))
    with torch.no_grad():
        G.w_avg.normal_()  # a w_avg that is not zero, as after training
    G.eval()
    z = torch.randn(5, G.in_dim)
    x0 = G(z, psi=0.0, noise="const")
    centre = G.synthesis(G.w_avg[None, None].expand(5, G.num_ws, -1), noise="const")
    torch.testing.assert_close(x0, centre)
    assert (x0 - x0[:1]).abs().max() < 1e-6  # every z gives the image of w_avg
    ws = G.mapping(z)[:, None].expand(-1, G.num_ws, -1)
    torch.testing.assert_close(G(z, psi=1.0, noise="const"), G.synthesis(ws, noise="const"))
    half = G.synthesis((G.w_avg + 0.5 * (G.mapping(z) - G.w_avg))[:, None].expand(-1, G.num_ws, -1), noise="const")
    torch.testing.assert_close(G(z, psi=0.5, noise="const"), half)


def test_w_avg_tracks_the_mapping_in_training_only():
    G, _ = build((1, 28, 28))
    z = torch.randn(16, G.in_dim)
    G.train()
    w = G.mapping(z).detach()
    torch.testing.assert_close(G.w_avg, 0.005 * w.mean(0))  # 0.995 * 0 + 0.005 E[w]
    before = G.w_avg.clone()
    G.mapping(z, track=False)  # the style-mixing latents leave it alone
    G.eval()
    G.mapping(z)
    G(z)
    assert torch.equal(G.w_avg, before)
    assert "w_avg" in G.state_dict()


def test_style_mixing_switches_w_at_the_cut():
    G, _ = build((1, 32, 32))
    G.eval()
    n = 3
    z, (z2, _) = torch.randn(n, G.in_dim), mix_for(G, n, 0)
    cut = torch.tensor([1, 4, G.num_ws])  # the last sample is not mixed
    w1, w2 = G.mapping(z), G.mapping(z2)
    seen = {}
    layers = [m for m in G.modules() if isinstance(m, (SynthesisLayer, ToRGB))]
    hooks = [m.conv.affine.register_forward_hook(lambda mod, inp, out, m=m: seen.__setitem__(m, inp[0]))
             for m in layers]
    x = G(z, mix=(z2, cut), noise="const")
    for h in hooks:
        h.remove()
    assert sorted({m.w_index for m in layers}) == list(range(G.num_ws))
    for m in layers:
        for i in range(n):
            want = w1[i] if m.w_index < cut[i] else w2[i]
            torch.testing.assert_close(seen[m][i], want, msg=f"layer {m.w_index}, sample {i}")
    ws = torch.stack([torch.stack([w1[i] if k < cut[i] else w2[i] for k in range(G.num_ws)]) for i in range(n)])
    torch.testing.assert_close(x, G.synthesis(ws, noise="const"))
    torch.testing.assert_close(x[2], G(z, noise="const")[2])


def test_style_mix_draw():
    cfg = load_config("stylegan2")
    G, _ = build((1, 28, 28))
    st = SimpleNamespace(cfg=cfg, nets={"G": G}, gens={"z": torch.Generator().manual_seed(0)}, device="cpu")
    z2, cut = style_mix(st, 20_000, slice(0, 20_000))
    assert z2.shape == (20_000, G.in_dim) and cut.dtype == torch.int64
    assert cut.min() == 1 and cut.max() == G.num_ws
    assert abs((cut == G.num_ws).float().mean().item() - 0.1) < 0.01  # P(no mixing) = 1 - style_mix
    assert style_mix(SimpleNamespace(**{**vars(st), "cfg": cfg.replace(**{"model.style_mix": 0.0})}), 4,
                     slice(0, 4)) is None
    dc = SimpleNamespace(**{**vars(st), "cfg": load_config("dcgan")})
    assert style_mix(dc, 4, slice(0, 4)) is None


def test_path_length_penalty_matches_the_jacobian():
    torch.manual_seed(3)
    G, _ = build((1, 28, 28))
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, SynthesisLayer):
                m.noise_strength.fill_(0.3)
    z = torch.randn(2, G.in_dim)
    mean = PathLengthMean()
    mean.a.fill_(0.5)
    torch.manual_seed(7)  # G's noise inputs
    pen = path_length_penalty(G, z, None, None, mean, 0.01, generator=torch.Generator().manual_seed(11))

    # by hand: the full Jacobian of the images w.r.t. ws, then J^T y
    ws = G.styles(z).detach()  # (2, num_ws, w_dim)
    torch.manual_seed(7)
    J = torch.autograd.functional.jacobian(lambda w: G.synthesis(w), ws)  # (2, 1, 28, 28, 2, num_ws, w_dim)
    y = torch.randn((2, 1, 28, 28), generator=torch.Generator().manual_seed(11)) / 28
    jty = torch.einsum("bchw,bchwkmd->kmd", y, J)  # (2, num_ws, w_dim)
    lengths = jty.square().sum(2).mean(1).sqrt()
    a = 0.5 + 0.01 * (lengths.mean() - 0.5)  # the running mean moves by pl_decay
    torch.testing.assert_close(mean.a, a)
    torch.testing.assert_close(pen, (lengths - a).square().mean())
    pen.backward()  # trained through: the penalty has gradients for G
    assert G.const.grad is not None and G.const.grad.abs().sum() > 0


def test_minibatch_std_by_hand():
    x = torch.randn(8, 3, 2, 2)
    out = minibatch_std(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for g in range(2):  # groups of 4 consecutive samples
        grp = x[4 * g:4 * g + 4]
        want = (grp.var(0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[4 * g:4 * g + 4, 3], want.expand(4, 2, 2))
    assert minibatch_std(torch.randn(6, 1, 1, 1)).shape == (6, 2, 1, 1)  # groups of 3 when 4 does not divide
    _, D = build((1, 28, 28))
    assert D.mixes_batch  # reals and fakes go through D apart: a group never mixes the two


def test_spectral_norm_refused():
    with pytest.raises(GankitError, match="spectral_norm"):
        build_models(ModelConfig(arch="stylegan2", spectral_norm=True), (1, 28, 28))


# -- through the trainer --------------------------------------------------------------------------
TINY = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "model.w_dim=8",
        "model.mapping_layers=2", "train.batch=8", "log.progress=false", "log.every=2", "log.grid_n=4",
        "device=cpu", "reg.pl_every=1", "reg.r1_every=2"]


def tiny(steps, *more):
    return load_config("stylegan2", overrides=[*TINY, f"train.steps={steps}", *more])


def test_preset_logs_path_length_and_resumes_exactly(tmp_path):
    whole = gankit.train(tiny(6), tmp_path / "whole")
    rows = [r for r in gankit.viz.read_jsonl(whole.dir / "metrics.jsonl") if "loss_d" in r]
    assert len(rows) == 3 and all(r["pl"] > 0 and r["pl_mean"] > 0 and r["r1"] > 0 for r in rows)
    assert rows[-1]["pl_mean"] > rows[0]["pl_mean"]  # a climbs from 0 toward the lengths
    part = gankit.train(tiny(3), tmp_path / "part")
    assert part.step == 3
    resumed = gankit.train(tiny(6), tmp_path / "part", resume=True)
    assert resumed.step == 6
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    for key in ("G", "D"):
        for k in a["nets"][key]:
            assert torch.equal(a["nets"][key][k], b["nets"][key][k]), (key, k)
    for k in a["ema"]["G"]["weights"]:
        assert torch.equal(a["ema"]["G"]["weights"][k], b["ema"]["G"]["weights"][k]), k
    assert a["extra"]["pl"]["a"] > 0 and torch.equal(a["extra"]["pl"]["a"], b["extra"]["pl"]["a"])
    assert a["nets"]["G"]["w_avg"].abs().sum() > 0
    run = gankit.load(str(whole.dir))
    assert run.sample(2, seed=0).shape == (2, 1, 28, 28)


def test_pl_every_k_steps_and_off():
    """The flag picks the G updates that carry the penalty; with reg.pl = 0 nothing is computed."""
    task = gankit.tasks.get_task("generate")
    cfg = tiny(8, "reg.pl_every=4")
    assert [task.flags(cfg, t)[2] for t in range(8)] == [True, False, False, False] * 2
    assert not any(task.flags(tiny(8, "reg.pl=0"), t)[2] for t in range(8))


def _engine(mode, *more):
    cfg = tiny(4, *more)
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, torch.device("cpu"))
    return Engine.build(cfg, data, torch.device("cpu"), mode=mode)


@pytest.mark.parametrize("more", [(), ("model.conditional=true", "model.d_head=projection")])
def test_graph_step_equals_eager_and_reads_nothing_back(more, no_host_reads):
    """Style mixing, path length (every step) and lazy R1 inside the graph-shaped step: the same
    numbers as eager, and no host read (so CUDA-graph capture keeps working)."""
    runs = {}
    for mode in ("eager", "static"):
        e = _engine(mode, *more)
        for t in range(4):
            if mode == "static":
                with no_host_reads():
                    e.step(t)
            else:
                e.step(t)
        runs[mode] = (torch.cat([t.detach().flatten().float() for m in e.st.nets.values()
                                 for t in m.state_dict().values()]), e.st.acc.clone())
    assert torch.equal(runs["eager"][0], runs["static"][0]) and torch.equal(runs["eager"][1], runs["static"][1])
    assert runs["eager"][1][STAT_NAMES.index("pl_n")] == 4
