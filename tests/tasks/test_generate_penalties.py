"""The generation task's D phase with R2 (R3GAN): the penalty at the fakes equals E||grad_x D||^2
computed on its own, enters D's loss as gamma/2 of it, and the step logs it."""

import torch
from torch.testing import assert_close

import gankit
from gankit.config import load_config
from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.regularizers import r1_penalty
from gankit.tasks.generate.phases import D_STATS, Batch, Objective, _Bare, d_phase


def test_r2_is_the_gradient_norm_at_the_fakes_and_enters_the_loss_at_half_gamma():
    cfg = load_config("seed-mlp", overrides=["model.d_dropout=0", "model.g_hidden=[16]", "model.d_hidden=[16]",
                                             "model.z_dim=4", "data.resolution=null"])
    torch.manual_seed(0)
    G, D = build_models(cfg.model, (1, 4, 4))
    gamma = 3.0
    obj = Objective(loss=LOSSES["rpgan"], r2=gamma, r1_every=1)
    x, z = torch.rand(5, 1, 4, 4) * 2 - 1, torch.randn(5, 4)
    with torch.no_grad():
        fake = G(z)
        real_logits, fake_logits = D(x), D(fake)
    want_r2 = r1_penalty(D, fake)  # E||grad_x D(x)||^2 at the fakes, before D's update
    by_hand = torch.func.vmap(torch.func.grad(lambda v: D(v[None])[0]))(fake).flatten(1).pow(2).sum(1).mean()
    assert_close(want_r2, by_hand)  # the penalty function is the squared gradient norm, per sample
    want_loss = LOSSES["rpgan"].d(real_logits, fake_logits) + 0.5 * gamma * want_r2
    st = _Bare(G, D, torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0), obj, None)
    stats, _ = d_phase(st, Batch(x, None, z), with_r1=True)
    assert_close(stats[D_STATS.index("r2")], want_r2.detach())
    assert_close(stats[D_STATS.index("loss_d")], want_loss.detach())
    assert stats[D_STATS.index("r1")] == 0  # R1's weight is 0: not computed
    stats, _ = d_phase(st, Batch(x, None, z), with_r1=False)  # off-schedule steps carry neither
    assert stats[D_STATS.index("r2")] == 0


def test_r1_and_r2_every_step_are_logged(tmp_path):
    tiny = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
            "model.z_dim=4", "model.d_dropout=0", "train.batch=8", "log.progress=false", "log.every=2",
            "train.steps=2", "train.loss=rpgan", "reg.r1=0.1", "reg.r2=0.1", "reg.r1_every=1"]
    run = gankit.train(load_config("seed-mlp", overrides=tiny), tmp_path / "r")
    row = [r for r in gankit.viz.read_jsonl(run.dir / "metrics.jsonl")][-1]
    assert row["r1"] > 0 and row["r2"] > 0
