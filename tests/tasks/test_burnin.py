"""R3GAN's burn-in schedules (gankit.tasks.generate.burnin): the cosine, the EMA half-life, and the values
the engine puts into the optimisers, the penalty weight and the EMA before each step."""

import math

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.tasks.generate.burnin import cosine, ema_decay
from gankit.training.engine import Engine, graph_blockers

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "model.d_dropout=0", "train.batch=8", "train.ema=true", "reg.r1=1.0", "reg.r2=0.5",
        "reg.r1_every=1", "train.betas=[0.0,0.9]", "train.precision=fp32", "log.progress=false", "device=cpu"]
# 8 images a step: 0.08 kimg is 10 steps
BURN = ["burnin.kimg=0.08", "burnin.lr=0.25", "burnin.gamma=0.1", "burnin.beta2=0.99", "burnin.ema_kimg=0.04"]


def test_cosine_runs_from_start_to_final_then_holds():
    assert cosine(0, 2e-4, 5e-5, 100) == pytest.approx(2e-4)
    assert cosine(50, 2e-4, 5e-5, 100) == pytest.approx((2e-4 + 5e-5) / 2)  # the half cosine's midpoint
    assert cosine(25, 1.0, 0.0, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine(100, 2e-4, 5e-5, 100) == cosine(10**9, 2e-4, 5e-5, 100) == pytest.approx(5e-5)
    assert cosine(0, 1.0, 0.3, 0) == 0.3  # no burn-in length: the final value at once


def test_ema_half_life_in_images():
    d = ema_decay(half_life_images=640, batch=64)  # ten steps of 64 images
    assert d ** 10 == pytest.approx(0.5)
    assert ema_decay(0, 64) == 0.0  # half-life 0: the average is the current weights


def _engine(*more):
    cfg = load_config("seed-mlp", overrides=[*TINY, *more])
    return Engine.build(cfg, load_data(cfg.data.source), torch.device("cpu"), mode="eager")


def test_engine_applies_each_schedule_before_each_step():
    e = _engine(*BURN)
    st = e.st
    e.step(0)  # step 0 runs with the starting values
    assert e.lr("G") == pytest.approx(2e-4) and float(st.reg_scale) == 1.0
    assert st.opts["D"].param_groups[0]["betas"] == (0.0, 0.9)
    assert float(st.emas["G"].cap) == 0.0  # half-life 0 at the start: EMA = G
    for t in range(1, 6):
        e.step(t)
    # step 5: 40 of 80 images, the cosine's midpoint
    assert e.lr("G") == pytest.approx(2e-4 * (1 + 0.25) / 2) and e.lr("D") == pytest.approx(2e-4 * 0.625)
    assert float(st.reg_scale) == pytest.approx((1 + 0.1) / 2)
    assert st.opts["G"].param_groups[0]["betas"][1] == pytest.approx((0.9 + 0.99) / 2)
    assert float(st.emas["G"].cap) == pytest.approx(0.5 ** (8 / 20))  # half-life 20 images
    for t in range(6, 14):
        e.step(t)
    assert e.lr("G") == pytest.approx(5e-5) and float(st.reg_scale) == pytest.approx(0.1)
    assert st.opts["G"].param_groups[0]["betas"] == (0.0, pytest.approx(0.99))
    assert float(st.emas["G"].cap) == pytest.approx(0.5 ** (8 / 40))


def test_gamma_factor_scales_the_penalties_in_the_loss():
    """reg_scale 0 removes R1 and R2 from D's loss: the D update equals one without penalties."""
    a = _engine(*BURN[:1], "burnin.gamma=0.0")
    a.st.reg_scale.fill_(0.0)
    b = _engine("reg.r1=0", "reg.r2=0")
    torch.manual_seed(0)
    for e in (a, b):
        e.schedule = None  # hold reg_scale at 0 in a (and lr at the start value in both)
    a.step(0)
    b.step(0)
    for p, q in zip(a.st.nets["D"].parameters(), b.st.nets["D"].parameters()):
        torch.testing.assert_close(p, q)
    c = _engine()  # burn-in off: penalties at full weight change D's update
    c.step(0)
    assert any(not torch.allclose(p, q) for p, q in zip(c.st.nets["D"].parameters(), b.st.nets["D"].parameters()))


def test_burnin_resume_is_exact(tmp_path):
    cfg = load_config("seed-mlp", overrides=[*TINY, *BURN, "train.steps=12", "log.every=3"])
    whole = gankit.train(cfg, tmp_path / "w")
    gankit.train(cfg.replace(**{"train.steps": 5}), tmp_path / "p")
    part = gankit.train(cfg, tmp_path / "p", resume=True)
    for p, q in zip(whole.G.parameters(), part.G.parameters()):
        assert torch.equal(p, q)


def test_config_errors_and_graph_blocker():
    with pytest.raises(GankitError, match="burnin.lr and train.lr_schedule"):
        load_config("seed-mlp", overrides=["burnin.kimg=1", "burnin.lr=0.5", "train.lr_schedule=cosine"])
    with pytest.raises(GankitError, match="train.ema=true"):
        load_config("seed-mlp", overrides=["burnin.kimg=1", "burnin.ema_kimg=10"])
    with pytest.raises(GankitError, match="burnin.beta2"):
        load_config("seed-mlp", overrides=["burnin.beta2=1.5"])
    cfg = load_config("r3gan", overrides=["burnin.kimg=1", "burnin.beta2=0.99"])
    assert any("beta2" in w for w in graph_blockers(cfg, torch.device("cuda")))
    assert not any("beta2" in w for w in graph_blockers(load_config("r3gan"), torch.device("cuda")))
