"""The cascade generator (recon.g_arch: cascade) at tiny sizes (16 px, K = 2): an untrained cascade
is the classical reconstruction; MRI outputs are data-consistent to float precision whatever the
CNNs do; a CT block is the written learned-gradient step and reads the sinogram; the phase's
losses are the written formula over the cascade's output; a cascade run trains, loads back
and reconstructs with `gankit recon`; bad settings are refused in one line. Exact resume and the
graph-shaped step of a cascade run: test_recon.py, beside the U-Nets'."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.recon import physics
from gankit.tasks.recon.cascade import GRADIENT_FILTER, Cascade
from gankit.tasks.recon.evaluation import evaluate_recon
from gankit.tasks.recon.measure import Measure
from gankit.tasks.recon.phases import Objective, recon_phase

N = 16
TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "recon.grid_examples=2", f"recon.size={N}", "recon.cascades=2",
        "recon.cascade_depth=2", "eval.every=0"]


def _cfg(preset, *extra):
    return load_config(preset, overrides=[*TINY, *extra])


def _phantoms(b: int = 3, seed: int = 0) -> torch.Tensor:
    x = torch.rand(b, 1, N, N, generator=torch.Generator().manual_seed(seed))
    return x * physics.circle_mask(N)  # (B, 1, N, N) in [0, 1], zero outside the scanner's circle


def _mri() -> Measure:
    return Measure("mri", mask=tuple(physics.cartesian_mask(N, 4, 0.125, "random", 0).tolist()), noise=0.01)


def _ct() -> Measure:
    return Measure("ct", tuple(physics.ct_angles(10)), 1e4, "ramp")


def _shaken(G: Cascade, seed: int = 0) -> Cascade:
    """G with every weight drawn at random (off the zero-initialised last convs), so each block acts."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in G.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return G


# -- the network ---------------------------------------------------------------------------------


def test_an_untrained_cascade_is_the_classical_reconstruction():
    x = _phantoms()
    for m in (_ct(), _mri()):
        meas = m.measure(x, torch.Generator().manual_seed(1))
        y = m.classical(meas)
        out = Cascade(m.modality, cascades=2, depth=2, width=4)(y, meas, m)
        want = physics.ifft2c(meas) if m.modality == "mri" else y  # zero-filled (complex) or FBP
        torch.testing.assert_close(out, want, rtol=0, atol=1e-6)


def test_the_mri_cascade_output_is_data_consistent():
    m = _mri()
    x = _phantoms()
    k = m.measure(x, torch.Generator().manual_seed(1))  # noisy k-space on the mask
    G = _shaken(Cascade("mri", cascades=2, depth=3, width=4))
    out = G(m.classical(k), k, m)  # (B, 1, N, N) complex
    assert out.is_complex() and out.shape == x.shape
    assert physics.mri_consistency_error(out, k, m.mask_tensor()).max() < 1e-6  # float32 precision
    ko = physics.fft2c(out)
    assert ko[..., ~m.mask_tensor()].abs().max() > 1e-2  # the CNNs filled the unmeasured columns
    assert (out - physics.ifft2c(k)).abs().max() > 1e-2  # and so it is not the zero-filled image


def test_a_ct_block_is_the_learned_gradient_step_and_reads_the_sinogram():
    m = _ct()
    x = _phantoms()
    s = m.measure(x, torch.Generator().manual_seed(1))  # (B, N, A)
    y = m.classical(s)
    G = _shaken(Cascade("ct", cascades=1, depth=2, width=4))
    # x_1 = C (x_0 + CNN([x_0, FBP_hann(s - radon(x_0))])), x_0 = FBP(s)
    g = physics.fbp(s - physics.radon(y, m.angles), m.angles, "hann")
    want = (y + G.blocks[0](torch.cat([y, g], 1))) * physics.circle_mask(N)
    torch.testing.assert_close(G(y, s, m), want)
    assert GRADIENT_FILTER == "hann"
    # the same FBP input with another sinogram: the output changes (G reads the measurement itself)
    other = m.measure(_phantoms(seed=5), torch.Generator().manual_seed(1))
    assert (G(y, other, m) - G(y, s, m)).abs().max() > 1e-3


@pytest.mark.parametrize("modality", ["ct", "mri"])
def test_the_cascade_step_is_the_written_formula(modality, step_state, float64, paired_losses):
    m = _ct() if modality == "ct" else _mri()
    x01 = _phantoms().double()
    meas = m.measure(x01, torch.Generator().manual_seed(1))
    if modality == "mri":
        meas = meas.to(torch.complex128)
    y, x = m.classical(meas) * 2 - 1, x01 * 2 - 1
    G = _shaken(Cascade(modality, cascades=2, depth=2, width=4)).double()
    D = torch.nn.Conv2d(2, 1, 4, stride=2)
    obj = Objective(gan=0.7, l1=42.0, residual=True, dc=modality == "mri", physics=m)
    st = step_state(SimpleNamespace(objective=obj, nets={"G": G, "D": D}, extra={}))
    st.data = SimpleNamespace(mask=m.mask_tensor() if modality == "mri" else None)
    recon_phase(st, y, x, meas)
    with torch.no_grad():
        out = G((y + 1) / 2, meas, m).real * 2 - 1  # no second DC step: the cascade ends on its own
    paired_losses(st, D, y, x, out, gan=0.7, l1=42.0)


# -- runs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_cascade(tmp_path_factory):
    return gankit.train(_cfg("recon-ct-cascade", "train.steps=2", "recon.photons=1e4"),
                        str(tmp_path_factory.mktemp("ctc") / "run"))


@pytest.fixture(scope="module")
def mri_cascade(tmp_path_factory):
    return gankit.train(_cfg("recon-mri-cascade", "train.steps=2", "recon.noise=0.01"),
                        str(tmp_path_factory.mktemp("mric") / "run"))


def test_a_cascade_run_trains_evaluates_and_loads_back(ct_cascade, mri_cascade):
    for run in (ct_cascade, mri_cascade):
        G = run.nets["G"]
        assert isinstance(G, Cascade) and len(G.blocks) == 2
        assert any(b[-1].weight.abs().max() > 0 for b in G.blocks)  # trained off the zero init
        loaded = gankit.load(str(run.dir)).nets["G"]
        assert isinstance(loaded, Cascade)
        assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.state_dict().values()))
    r = evaluate_recon(mri_cascade.config, mri_cascade.nets["G"], n=4)
    for s in ("held_out", "shepp_logan"):
        assert r[s]["gankit"]["dc_error"] < 1e-5 < r[s]["input"]["dc_error"]
    r = evaluate_recon(ct_cascade.config, ct_cascade.nets["G"], n=4)
    assert 0 < r["held_out"]["gankit"]["dc_error"] < 0.5 and "10000 photons" in r["protocol"]["measurements"]


def test_recon_command_on_cascade_runs(ct_cascade, mri_cascade, tmp_path, capsys):
    x = _phantoms(1)
    sino = physics.radon(x, physics.ct_angles(20))[0].numpy()  # another view count than trained
    np.save(tmp_path / "s.npy", sino)
    assert main(["recon", str(ct_cascade.dir), str(tmp_path / "s.npy"), "--views", "20",
                 "--out", str(tmp_path / "o.npy")]) == 0
    assert "20 views" in capsys.readouterr().out
    est = np.load(tmp_path / "o.npy")
    assert est.dtype == np.float32 and est.shape == (N, N)
    from PIL import Image

    Image.fromarray((x[0, 0].numpy() * 255).round().astype(np.uint8)).save(tmp_path / "slice.png")
    r = gankit.api.recon(mri_cascade.dir, tmp_path / "slice.png", tmp_path / "mri.npy", simulate="mri:accel=4")
    est = np.load(r["out"])
    assert est.dtype == np.complex64 and est.shape == (N, N) and r["dc_error"] < 1e-5 < r["dc_error_input"]


def test_onnx_export_of_a_cascade_is_refused_in_one_line(ct_cascade, tmp_path, capsys):
    assert main(["export", str(ct_cascade.dir), "--out", str(tmp_path / "g"), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recon.g_arch = cascade has no ONNX export" in err
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("sets, msg", [
    (["recon.residual=false"], "recon.residual = false with recon.g_arch = cascade"),
    (["recon.data_consistency=false"], "recon.data_consistency = false with recon.g_arch = cascade"),
    (["recon.cascades=0"], "recon.cascades = 0 is out of range; expected 1 to 20"),
    (["recon.cascade_depth=1"], "recon.cascade_depth = 1 is out of range; expected 2 to 10"),
])
def test_bad_cascade_settings_are_refused_in_one_line(sets, msg):
    with pytest.raises(GankitError) as e:
        load_config("recon-mri-cascade", overrides=sets)
    assert msg in str(e.value) and "\n" not in str(e.value)
