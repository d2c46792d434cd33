"""The training knobs and presets of the GAN zoo, end to end on tiny models."""

import math

import pytest
import torch

import gankit
from gankit.config import load_config, preset_names
from gankit.data.synthetic import toy_modes
from gankit.errors import GankitError
from gankit.models import build_models
from gankit.training.checkpoint import load_checkpoint
from gankit.training.ema import EMA

TINY = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.cbase=null", "model.cmax=null", "model.z_dim=8",
        "model.g_hidden=[16]", "model.d_hidden=[16]", "train.batch=8", "log.progress=false",
        "log.grid_n=4", "log.every=2", "device=cpu"]


def tiny(preset, steps, *more):
    return load_config(preset, overrides=[*TINY, f"train.steps={steps}", *more])


GENERATE = [p for p in preset_names() if not p.startswith("toy-") and load_config(p).task == "generate"]


@pytest.mark.parametrize("preset", GENERATE)
def test_every_image_preset_trains(preset, tmp_path):
    run = gankit.train(tiny(preset, 2), tmp_path / preset)
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert ck["step"] == 2
    x = run.sample(3, seed=0)
    res = run.config.data.resolution
    assert x.shape == (3, 1, res, res) and x.dtype == torch.uint8
    assert ck["opts"]["D"]["state"][0]["step"] == 2 * run.config.train.n_critic
    assert ck["opts"]["G"]["state"][0]["step"] == 2
    html = (run.dir / "report.html").read_text()  # every preset's run gets its report
    assert 'id="step-slider"' in html and f"{preset}" in html and 'alt="training data"' in html


@pytest.mark.parametrize("preset", ["toy-mlp", "toy-r1"])
def test_toy_presets_train(preset, tmp_path):
    run = gankit.train(load_config(preset, overrides=["train.steps=3", "log.progress=false"]), tmp_path / "t")
    assert run.sample(5, seed=0).shape == (5, 2)
    assert 'id="step-slider"' in (run.dir / "report.html").read_text()  # scatter plots over training


def test_weight_clipping_holds(tmp_path):
    run = gankit.train(tiny("wgan", 3), tmp_path / "w")
    D = load_checkpoint(run.dir / "checkpoints" / "last.pt")["nets"]["D"]
    assert max(v.abs().max().item() for k, v in D.items() if v.is_floating_point() and "running" not in k) <= 0.01


def test_linear_schedule_reaches_zero(tmp_path):
    run = gankit.train(tiny("seed-mlp", 4, "train.lr_schedule=linear"), tmp_path / "l")
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert ck["opts"]["G"]["param_groups"][0]["lr"] == pytest.approx(0.0)
    assert ck["scheds"]["G"]["last_epoch"] == 4


def test_cosine_schedule_halfway(tmp_path):
    run = gankit.train(tiny("seed-mlp", 2, "train.lr_schedule=cosine", "train.steps=4"), tmp_path / "c")
    rows = gankit.viz.read_jsonl(run.dir / "metrics.jsonl")
    # logged after steps 2 and 4: 0.5 (1 + cos(pi t / 4)) * 2e-4, for each optimiser by its name
    for column in ("lr_g", "lr_d"):
        assert [r[column] for r in rows] == pytest.approx([2e-4 * 0.5 * (1 + math.cos(math.pi * 2 / 4)), 0.0], abs=1e-12)


def test_ema_matches_formula():
    G = torch.nn.Linear(2, 2)
    ema = EMA(G, decay=0.9)
    w0 = G.weight.detach().clone()
    with torch.no_grad():
        G.weight.add_(1.0)
    ema.update(G)  # t = 0: decay_0 = min(0.9, 1/10) = 0.1
    torch.testing.assert_close(ema.G.weight, 0.1 * w0 + 0.9 * (w0 + 1))
    assert ema.decay_at(100) == 0.9 and ema.decay_at(1) == pytest.approx(2 / 11)
    before = ema.G.weight.detach().clone()
    ema.update(G)  # t = 1: decay 2/11
    torch.testing.assert_close(ema.G.weight, 2 / 11 * before + 9 / 11 * (w0 + 1))


def test_ema_used_for_sampling_unless_asked(tmp_path):
    run = gankit.train(tiny("dcgan", 3), tmp_path / "e")
    assert run.ema
    raw = gankit.Run.load(run.dir, ema=False)
    assert not raw.ema and not torch.equal(run.sample(4, seed=0), raw.sample(4, seed=0))


def test_resume_exact_with_every_moving_part(tmp_path):
    """n_critic, EMA, a schedule, DiffAugment, instance noise, lazy R1 and InfoGAN codes: all of
    their state survives a checkpoint, so a run that crashed after its step-3 checkpoint and was
    resumed ends bitwise equal to the run left alone."""
    more = ["train.n_critic=2", "train.lr_schedule=linear", "reg.diffaug=color,translation,cutout",
            "reg.instance_noise=0.1", "reg.r1=1.0", "reg.r1_every=2", "model.info_cat=3",
            "model.info_cont=1", "model.d_batchnorm=false", "log.ckpt_every=3", "train.ema=true"]
    cfg = tiny("dcgan", 6, *more)
    whole = gankit.train(cfg, tmp_path / "whole")
    _train_until(cfg, tmp_path / "part", stop_after=3)
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")["step"] == 3
    resumed = gankit.train(cfg, tmp_path / "part", resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    for key in ("G", "D"):
        for k in a["nets"][key]:
            assert torch.equal(a["nets"][key][k], b["nets"][key][k]), (key, k)
    for k in a["ema"]["G"]["weights"]:
        assert torch.equal(a["ema"]["G"]["weights"][k], b["ema"]["G"]["weights"][k]), k


def _train_until(cfg, out, stop_after):
    """Run `cfg` but crash right after the checkpoint at `stop_after` steps is written."""
    from gankit.training.store import CheckpointStore

    real_save = CheckpointStore.save

    class Stop(Exception):
        pass

    def save_then_stop(self, state):
        path = real_save(self, state)
        if state["step"] == stop_after:
            raise Stop
        return path

    CheckpointStore.save = save_then_stop
    try:
        gankit.train(cfg, out)
    except Stop:
        pass
    finally:
        CheckpointStore.save = real_save


def test_conditional_ring8_puts_each_class_on_its_mode(tmp_path):
    cfg = load_config("toy-mlp", overrides=["train.steps=1500", "log.progress=false", "model.conditional=true",
                                            "model.d_head=projection", "log.grid_every=100000", "device=cpu"])
    run = gankit.train(cfg, tmp_path / "c")
    centres, _ = toy_modes("ring8")
    for k in range(8):
        x = run.sample(200, seed=k, label=k)
        nearest = torch.cdist(x, centres).argmin(1)
        assert (nearest == k).float().mean() > 0.95, k
        assert (x - centres[k]).norm(dim=1).median() < 0.5, k  # modes are 1.53 apart


def test_infogan_q_head_recovers_code_above_chance(tmp_path):
    cfg = load_config("toy-mlp", overrides=["train.steps=500", "log.progress=false", "model.info_cat=4",
                                            "model.z_dim=16", "train.lr_g=1e-3", "train.lr_d=2e-4",
                                            "log.grid_every=100000", "device=cpu"])
    run = gankit.train(cfg, tmp_path / "i")
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    _, D = build_models(cfg.model, (2,), 8)
    D.load_state_dict(ck["nets"]["D"])
    D.eval()
    correct = 0
    with torch.no_grad():
        for k in range(4):
            x = run.G(run.latents(250, seed=k, code=k))  # model space, as D sees it
            correct += (D.aux(D.features(x))[:, :4].argmax(1) == k).sum().item()
    assert correct / 1000 > 0.75  # chance is 0.25


def test_label_needing_model_on_unlabelled_data(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((16, 28, 28), np.uint8))
    cfg = tiny("cgan", 1, f"data.source={tmp_path / 'x.npy'}")
    with pytest.raises(GankitError, match="need labelled data"):
        gankit.train(cfg, tmp_path / "r")


@pytest.mark.parametrize("override, words", [
    (["reg.label_smoothing=0.1", "train.loss=hinge"], "label_smoothing applies to the BCE losses"),
    (["reg.gp=10", "reg.clip=0.01"], "use one"),
    (["reg.gp=10", "model.arch=dcgan"], "set model.d_batchnorm=false"),
    (["model.attention=true"], "attention is a block of the resnet arch"),
    (["reg.diffaug=color,flip"], "subset of color, translation, cutout"),
    (["model.arch=dcgan", "data.resolution=48"], None),
])
def test_bad_combinations(override, words, tmp_path):
    if words is None:  # only detectable once the data's shape is known
        with pytest.raises(GankitError, match="builds square images of side 28 or a power of two from 32 to 256; the data is 1x48x48"):
            gankit.train(tiny("seed-mlp", 1, *override), tmp_path / "r")
        return
    with pytest.raises(GankitError, match=words):
        tiny("seed-mlp", 1, *override)
