"""benchmarks/recon.py's scorer on a tiny case: PSNR against a known offset, the data-consistency
errors of the truth and of complex estimates, and that its measurements are the task's."""

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.data.phantoms import ellipse_phantoms
from gankit.tasks.recon import baselines as B
from gankit.tasks.recon import physics

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("recon_bench", ROOT / "benchmarks" / "recon.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ARGS = types.SimpleNamespace(photons=1e4, low_dose=1e3, mri_noise=0.05)


def test_scores_ct_against_known_values(bench):
    img = ellipse_phantoms(1, 32, 1)[0]
    m = bench.simulate(bench.measure_model(bench.SETTINGS["ct-30"], 32, ARGS), img, 0)
    np.testing.assert_allclose(m.sino, physics.radon(torch.from_numpy(img)[None, None],
                                                     physics.ct_angles(30))[0].numpy(), rtol=1e-6)
    truth = bench.score(lambda _: img, [(img, m)])
    assert truth["dc_error"] < 1e-5 and truth["ssim"] == pytest.approx(1.0) and truth["slices"] == 1
    # every pixel 0.1 off (outside the circle too, which radon warns about)
    off = bench.score(lambda _: img + np.float32(0.1), [(img, m)])
    assert off["psnr"] == pytest.approx(20.0, abs=0.01)  # MSE 0.01 -> 10 log10(1 / 0.01)
    noisy = bench.simulate(bench.measure_model(bench.SETTINGS["ct-30-noisy"], 32, ARGS), img, 0)
    again = bench.simulate(bench.measure_model(bench.SETTINGS["ct-30-noisy"], 32, ARGS), img, 0)
    assert np.array_equal(noisy.sino, again.sino) and not np.allclose(noisy.sino, m.sino)


def test_scores_mri_with_the_complex_estimate(bench):
    img = ellipse_phantoms(1, 32, 1)[0]
    m = bench.simulate(bench.measure_model(bench.SETTINGS["mri-4x"], 32, ARGS), img, 0)
    assert m.mask.sum() == 8 and np.allclose(m.kspace, B.fft2c(img) * m.mask, atol=1e-6)
    zf = bench.score(bench.method("zero-filled-real", {}), [(img, m)])
    assert zf["dc_error_complex"] < 1e-6 < zf["dc_error"]  # the estimate is exact, its clipped real part is not
    noisy = bench.simulate(bench.measure_model(bench.SETTINGS["mri-4x-noisy"], 32, ARGS), img, 0)
    n = (noisy.kspace - m.kspace)[:, m.mask]
    assert abs(np.mean(np.abs(n) ** 2) / 0.05**2 - 1) < 0.2 and not noisy.kspace[:, ~m.mask].any()
