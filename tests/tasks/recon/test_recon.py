"""The reconstruction task at tiny sizes: the loss is the one written in phases.py (with the
data-consistency step), a tiny run of each modality trains and evaluates (MRI outputs consistent
to float precision), resume is exact with low-dose noise drawn each step, and `gankit recon`
reconstructs a simulated image and a sinogram, refusing bad input in one line with no output left."""

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
from gankit.tasks.recon import physics
from gankit.tasks.recon.evaluation import evaluate_recon
from gankit.tasks.recon.phases import Objective, recon_phase
from gankit.training.checkpoint import load_checkpoint

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "recon.grid_examples=2", "recon.size=32"]


def _cfg(preset, *extra):
    return load_config(preset, overrides=[*TINY, *extra])


@pytest.fixture(scope="module")
def ct_run(tmp_path_factory):
    return gankit.train(_cfg("recon-ct", "train.steps=2"), str(tmp_path_factory.mktemp("ct") / "run"))


@pytest.fixture(scope="module")
def mri_run(tmp_path_factory):
    return gankit.train(_cfg("recon-mri", "train.steps=2"), str(tmp_path_factory.mktemp("mri") / "run"))


# -- the maths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dc", [False, True])
def test_the_losses_are_the_written_formula(dc, step_state, float64, paired_losses):
    torch.manual_seed(0)
    n = 8
    G = torch.nn.Conv2d(1, 1, 3, padding=1)
    D = torch.nn.Conv2d(2, 1, 4, stride=2)
    x = torch.rand(3, 1, n, n) * 2 - 1
    mask = torch.from_numpy(physics.cartesian_mask(n, 4, 0.25, "random", 0))
    k = physics.undersample((x + 1) / 2, mask)
    y = physics.zero_filled(k) * 2 - 1
    st = step_state(SimpleNamespace(objective=Objective(gan=0.7, l1=42.0, residual=True, dc=dc), nets={"G": G, "D": D},
                                    extra={}))
    st.data = SimpleNamespace(mask=mask)
    recon_phase(st, y, x, k)
    with torch.no_grad():
        out = y + G(y)
        if dc:  # the measured columns put back: 2 Re ifft2c(M k + (1 - M) fft2c((out + 1) / 2)) - 1
            ko = physics.fft2c(((out + 1) / 2).to(torch.complex128))
            ko[..., mask] = k[..., mask]
            out = physics.ifft2c(ko).real * 2 - 1
    paired_losses(st, D, y, x, out, gan=0.7, l1=42.0)


# -- training, evaluation, resume ----------------------------------------------------------------


def test_a_tiny_ct_run_trains_and_evaluates(ct_run):
    r = evaluate_recon(ct_run.config, ct_run.nets["G"], n=8)
    assert set(r) == {"held_out", "shepp_logan", "protocol"}
    for s in ("held_out", "shepp_logan"):
        assert set(r[s]["input"]) == set(r[s]["gankit"]) == {"psnr", "ssim", "dc_error"}
        assert 12 < r[s]["input"]["psnr"] < 40 and 0 < r[s]["input"]["dc_error"] < 0.2
    assert r["held_out"]["n"] == 8 and r["shepp_logan"]["n"] == 1
    assert "30 views" in r["protocol"]["measurements"] and r["protocol"]["data_consistency"] is False
    assert (ct_run.dir / "checkpoints" / "last.pt").is_file()


def test_a_tiny_mri_run_is_data_consistent(mri_run):
    r = evaluate_recon(mri_run.config, mri_run.nets["G"], n=8)
    for s in ("held_out", "shepp_logan"):
        assert r[s]["gankit"]["dc_error"] < 1e-5  # the DC step: consistent to float32 precision
        assert r[s]["input"]["dc_error"] > 1e-2  # the zero-filled real part is not
    assert "4.00x" in r["protocol"]["measurements"] and r["protocol"]["data_consistency"] is True


CASCADE = ("recon.cascades=2", "recon.cascade_depth=2")  # the cascade (its own tests: test_cascade.py), tiny


@pytest.mark.slow
@pytest.mark.parametrize("preset, arch", [("recon-ct", ()), ("recon-ct-cascade", CASCADE)])
def test_resume_is_exact_with_low_dose_noise(preset, arch, tmp_path):
    sets = ("recon.photons=1e3", "train.lr_schedule=constant", *arch)  # a cosine over train.steps could not extend
    whole = gankit.train(_cfg(preset, "train.steps=4", *sets), str(tmp_path / "whole"))
    gankit.train(_cfg(preset, "train.steps=2", *sets), str(tmp_path / "part"))
    resumed = gankit.api.resume(str(tmp_path / "part"), ["train.steps=4"])
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_a_bad_mri_centre_is_refused_in_one_line():
    with pytest.raises(GankitError) as e:
        load_config("recon-mri", overrides=["recon.size=32", "recon.center_fraction=0.01"])
    assert "recon.center_fraction" in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_generator_is_refused_in_one_line():
    with pytest.raises(GankitError) as e:
        load_config("recon-ct", overrides=["recon.g_arch=unet"])
    msg = str(e.value)
    assert "recon.g_arch" in msg and "pix2pix" in msg and "fbpconvnet" in msg and "\n" not in msg


def test_an_fbpconvnet_run_trains_and_loads_back(tmp_path):
    """recon.g_arch = fbpconvnet: G is FBPConvNet's U-Net, it trains, and `gankit.load` rebuilds
    it from the run's config with the trained weights."""
    from gankit.models.fbpconvnet import FBPConvNet

    run = gankit.train(_cfg("recon-ct", "train.steps=2", "recon.g_arch=fbpconvnet", "recon.size=16", "eval.every=0"),
                       str(tmp_path / "run"))
    G = run.nets["G"]
    assert isinstance(G, FBPConvNet) and G.out.weight.abs().max() > 0  # no longer the zero init
    loaded = gankit.load(str(run.dir)).nets["G"]
    assert isinstance(loaded, FBPConvNet)
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.state_dict().values()))


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slice_png(tmp_path_factory):
    from gankit.data.phantoms import shepp_logan

    p = tmp_path_factory.mktemp("img") / "slice.png"
    Image.fromarray((shepp_logan(40) * 255).round().astype(np.uint8)).save(p)  # 40 px: not the run's 32
    return p


def test_recon_command_simulates_an_image(ct_run, mri_run, slice_png, tmp_path, capsys):
    out = tmp_path / "ct.png"
    assert main(["recon", str(ct_run.dir), str(slice_png), "--out", str(out), "--simulate", "ct:views=30"]) == 0
    line = capsys.readouterr().out
    assert "30 views" in line and "data-consistency error" in line and "PSNR" in line
    assert np.asarray(Image.open(out)).shape == (40, 40)
    r = gankit.api.recon(mri_run.dir, slice_png, tmp_path / "mri.npy", simulate="mri:accel=4")
    est = np.load(r["out"])
    assert est.dtype == np.complex64 and est.shape == (40, 40) and r["dc_error"] < 1e-5 < r["dc_error_input"]
    assert 10 < r["psnr"] and 10 < r["psnr_input"]


def test_recon_command_reconstructs_a_sinogram(ct_run, tmp_path, capsys):
    from gankit.data.phantoms import shepp_logan

    x = torch.from_numpy(shepp_logan(32))[None, None]
    sino = physics.radon(x, physics.ct_angles(60))[0].numpy()
    np.save(tmp_path / "s.npy", sino)
    assert main(["recon", str(ct_run.dir), str(tmp_path / "s.npy"), "--views", "60", "--out", str(tmp_path / "o.npy")]) == 0
    assert "60 views" in capsys.readouterr().out
    est = np.load(tmp_path / "o.npy")
    assert est.dtype == np.float32 and est.shape == (32, 32)


def test_recon_command_refuses_bad_input_in_one_line(ct_run, mri_run, slice_png, tmp_path, capsys):
    np.save(tmp_path / "s30.npy", np.zeros((32, 30), np.float32))
    np.save(tmp_path / "k.npy", np.zeros((32, 32), np.complex64))
    np.save(tmp_path / "k_real.npy", np.zeros((32, 32), np.float32))
    np.save(tmp_path / "k_rect.npy", np.zeros((32, 16), np.complex64))
    np.save(tmp_path / "m_bad.npy", np.zeros(31, bool))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    out = str(tmp_path / "o.png")
    cases = [([str(ct_run.dir), str(tmp_path / "s30.npy"), "--views", "60"], "has 30 angles but --views is 60"),
             ([str(ct_run.dir), str(slice_png)], "--simulate"),
             ([str(ct_run.dir), str(slice_png), "--simulate", "mri:accel=4"], "reconstructs CT"),
             ([str(ct_run.dir), str(slice_png), "--simulate", "ct:views=1"], "views 2 to 720"),
             ([str(ct_run.dir), str(tmp_path / "junk.npy")], "junk.npy"),
             ([str(mri_run.dir), str(tmp_path / "k_real.npy"), "--mask", str(tmp_path / "m_bad.npy")], "complex (N, N)"),
             ([str(mri_run.dir), str(tmp_path / "k_rect.npy")], "complex (N, N)"),
             ([str(mri_run.dir), str(tmp_path / "k.npy")], "--mask"),
             ([str(mri_run.dir), str(tmp_path / "k.npy"), "--mask", str(tmp_path / "m_bad.npy")], "expected bool (32,)")]
    for argv, msg in cases:
        assert main(["recon", *argv, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gankit: error:") and err.count("\n") == 1 and msg in err, (argv, err)
    assert not (tmp_path / "o.png").exists()
    assert main(["recon", str(ct_run.dir), str(slice_png), "--simulate", "ct:views=30", "--out",
                 str(tmp_path / "o.jpg")]) == 2
    assert ".png (8 bits) or .npy" in capsys.readouterr().err


@pytest.mark.parametrize("preset, sets", [("recon-mri", ()), ("recon-ct-cascade", ("recon.photons=1e4", *CASCADE))])
def test_graph_shaped_step_equals_eager_and_trains(preset, sets):
    """The MRI step's three inputs (indices, zero-filled images, k-space as real pairs), and the CT
    cascade's (indices, FBP images, sinograms), go through the static buffers a captured step
    uses; the result is bitwise the eager one."""
    from gankit.training.engine import Engine

    task = gankit.tasks.get_task("recon")
    runs = []
    for mode in ("eager", "static"):
        cfg = _cfg(preset, *sets)
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = [p.detach().clone() for m in e.st.nets.values() for p in m.parameters()]
        for t in range(2):
            e.step(t)
        w = [p.detach() for m in e.st.nets.values() for p in m.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(w0, w))
        runs.append((torch.cat([v.flatten() for v in w]), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
