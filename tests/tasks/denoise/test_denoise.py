"""The denoising task at tiny sizes: the noise models match their definitions, the loss is the one
written in phases.py (a wrong weight fails), the graph-shaped step equals the eager one, resume is
exact, evaluation scores the classical baselines on the same noisy bytes, and `gankit denoise`
round-trips an image of another size, refusing bad input in one line with no output left."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.denoise.evaluation import evaluate_denoise, noisy_copy
from gankit.tasks.denoise.noise import corrupt, parse_noise
from gankit.tasks.denoise.phases import Objective, denoise_phase, restore
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "denoise.grid_examples=2", "denoise.eval_noise=[gaussian:25]"]


def _cfg(*extra):
    return load_config("denoise", overrides=[*TINY, *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return gankit.train(_cfg("train.steps=2"), str(tmp_path_factory.mktemp("dn") / "run"))


# -- the noise models ----------------------------------------------------------------------------


def test_gaussian_noise_has_its_std_and_no_bias():
    x = torch.full((64, 1, 32, 32), 128, dtype=torch.uint8)  # mid-grey: clipping never reached at std 10
    y = corrupt(x, "gaussian:10", torch.Generator().manual_seed(0))
    d = y.double() - 128
    assert y.dtype == torch.uint8 and abs(float(d.mean())) < 0.1
    assert abs(float(d.std()) - (10**2 + 1 / 12) ** 0.5) < 0.1  # rounding adds a uniform's 1/12 variance


def test_a_gaussian_range_draws_one_std_per_image_within_it():
    x = torch.full((200, 1, 64, 64), 128, dtype=torch.uint8)  # 4096 pixels: an image's std within ~1.5%
    y = corrupt(x, "gaussian:5-40", torch.Generator().manual_seed(1))
    stds = (y.double() - 128).flatten(1).std(1)
    assert 4.5 < float(stds.min()) and float(stds.max()) < 41.5 and float(stds.std()) > 5  # spread, inside the range


def test_poisson_noise_variance_follows_the_signal():
    peak = 30.0
    for level in (32, 96):  # far enough from 255 that clipping does not bias the moments
        x = torch.full((64, 1, 32, 32), level, dtype=torch.uint8)
        y = corrupt(x, f"poisson:{peak:g}", torch.Generator().manual_seed(2)).double()
        want_var = 255.0 * level / peak  # Var[255 Poisson(P x / 255) / P] = 255 x / P
        assert abs(float(y.mean()) - level) < 1.0
        assert abs(float(y.var()) / want_var - 1) < 0.05


@pytest.mark.parametrize("spec", ["gaussian", "gaussian:0", "gaussian:30-10", "poisson:0", "poisson:1-2", "salt:3"])
def test_bad_noise_specs_are_refused_in_one_line(spec):
    with pytest.raises(GankitError, match=r"expected gaussian:S"):
        parse_noise(spec)
    with pytest.raises(GankitError) as e:
        load_config("denoise", overrides=[f"denoise.noise={spec}"])
    assert "denoise.noise" in str(e.value) and "\n" not in str(e.value)


# -- the maths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("residual", [True, False])
def test_the_losses_are_the_written_formula(residual, step_state):
    torch.manual_seed(0)
    G = torch.nn.Conv2d(1, 1, 3, padding=1)
    D = torch.nn.Conv2d(2, 1, 4, stride=2)
    y, x = torch.rand(3, 1, 8, 8) * 2 - 1, torch.rand(3, 1, 8, 8) * 2 - 1
    obj = Objective(gan=0.7, l1=42.0, residual=residual, loss="ns")
    st = step_state(SimpleNamespace(objective=obj, nets={"G": G, "D": D}, extra={}))  # tests/tasks/conftest.py
    stats = denoise_phase(st, y, x)
    with torch.no_grad():
        out = y + G(y) if residual else G(y)
        real, fake = D(torch.cat([y, x], 1)).flatten(1), D(torch.cat([y, out], 1)).flatten(1)
        sp = torch.nn.functional.softplus
        loss_d = sp(-real).mean() + sp(fake).mean()  # -log sigmoid(real) - log(1 - sigmoid(fake))
        adv = sp(-fake).mean()  # the non-saturating G loss
        l1 = (out - x).abs().mean()
    (got_d,), (got_g,) = st.losses["D"], st.losses["G"]
    torch.testing.assert_close(got_d, loss_d)
    torch.testing.assert_close(got_g, 0.7 * adv + 42.0 * l1)
    torch.testing.assert_close(stats[:4], torch.stack([loss_d, 0.7 * adv + 42.0 * l1, adv, l1]))
    # the check can fail: one percent more L1 weight is a different G loss
    assert not torch.allclose(got_g, 0.7 * adv + 42.42 * l1)
    torch.testing.assert_close(restore(G, y, residual), out)


def test_graph_shaped_step_equals_eager_and_trains():
    task = gankit.tasks.get_task("denoise")
    runs = []
    for mode in ("eager", "static"):
        cfg = _cfg()
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = [p.detach().clone() for m in e.st.nets.values() for p in m.parameters()]
        for t in range(3):
            e.step(t)
        w = [p.detach() for m in e.st.nets.values() for p in m.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(w0, w))
        runs.append((torch.cat([v.flatten() for v in w]), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_resume_is_exact(tmp_path):
    whole = gankit.train(_cfg("train.steps=4"), str(tmp_path / "whole"))
    gankit.train(_cfg("train.steps=2"), str(tmp_path / "part"))
    resumed = gankit.api.resume(str(tmp_path / "part"), ["train.steps=4"])
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


# -- evaluation, the command, the errors ------------------------------------------------------------


def test_evaluation_scores_every_method_on_the_same_noisy_bytes(run):
    r = evaluate_denoise(run.config, run.nets["G"], n=16)
    assert set(r["gaussian:25"]) == {"noisy", "nlm", "tv", "gankit"}
    noisy = r["gaussian:25"]["noisy"]
    assert 20 < noisy["psnr"] < 25  # std 25 on MNIST: ~22.8 dB
    assert r["gaussian:25"]["nlm"]["psnr"] > noisy["psnr"] + 1 and r["gaussian:25"]["tv"]["psnr"] > noisy["psnr"] + 1
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    assert torch.equal(noisy_copy(x, parse_noise("gaussian:25")), noisy_copy(x, parse_noise("gaussian:25")))
    assert "seed" in r["protocol"]["noise"] and "true sigma" in r["protocol"]["baselines"]


def test_denoise_command_round_trips_an_image_of_another_size(run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    img = tmp_path / "noisy.png"
    Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(img)  # RGB, not 28 px
    out = tmp_path / "clean.png"
    assert main(["denoise", str(run.dir), str(img), "--out", str(out)]) == 0
    got = np.asarray(Image.open(out))
    assert got.shape == (37, 45)  # the run's 1 channel, the input's own size
    assert "denoised 1 image (trained on gaussian:25)" in capsys.readouterr().out
    r = gankit.api.denoise(run.dir, img, tmp_path / "again.png")
    assert np.array_equal(np.asarray(Image.open(r["out"])), got)


def test_denoise_command_refuses_bad_input_in_one_line(run, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    for argv, msg in [([str(run.dir), str(bad), "--out", str(tmp_path / "o.png")], "bad.png"),
                      ([str(run.dir), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o.png")], "missing.png"),
                      ([str(tmp_path), str(bad), "--out", str(tmp_path / "o.png")], "")]:
        assert main(["denoise", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gankit: error:") and err.count("\n") == 1 and msg in err, err
    assert not (tmp_path / "o.png").exists()


def test_a_run_of_another_task_is_refused(tmp_path, capsys):
    other = gankit.train(load_config("inpaint", overrides=["model.g_width=4", "model.d_width=4", "train.batch=4",
                                                           "train.steps=1", "log.progress=false",
                                                           "inpaint.grid_examples=2"]), str(tmp_path / "inp"))
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    assert main(["denoise", str(other.dir), str(img), "--out", str(tmp_path / "o.png")]) == 2
    assert "denoising needs a 'denoise' run; this is a 'inpaint' run" in capsys.readouterr().err
