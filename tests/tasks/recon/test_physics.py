"""The reconstruction task's forward models against their definitions: Radon and FBP against
scikit-image (the same reads and sums, so equal to float64 rounding: 1e-10 relative; in float32
to 1e-5, rounding over N bilinear reads per ray), low dose against the Poisson model, the centred
FFT against Parseval, fastMRI's masks by count, centre and seed, and data consistency exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import iradon, radon as sk_radon

from gankit.data.phantoms import circle, ellipse_phantoms, load_recon, shepp_logan
from gankit.errors import GankitError
from gankit.tasks.recon import physics


@pytest.fixture(scope="module")
def sl():
    return shepp_logan(64).astype(np.float64)  # (64, 64) in [0, 1], zero outside the circle


@pytest.mark.parametrize("views", [30, 180])
def test_radon_equals_skimage(sl, views):
    th = physics.ct_angles(views)
    want = sk_radon(sl, th, circle=True)  # (64, views)
    got = physics.radon(torch.from_numpy(sl)[None, None], th)[0].numpy()
    assert got.shape == want.shape == (64, views)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    got32 = physics.radon(torch.from_numpy(sl).float()[None, None], th)[0].numpy()
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert np.abs(got32 - want).max() > 0  # float32 is not float64: the tolerance above is needed


@pytest.mark.parametrize("filt", ["ramp", "hann"])
@pytest.mark.parametrize("views", [30, 180])
def test_fbp_equals_skimage_iradon(sl, views, filt):
    th = physics.ct_angles(views)
    sino = sk_radon(sl, th, circle=True)
    want = iradon(sino, th, circle=True, filter_name=filt)
    got = physics.fbp(torch.from_numpy(sino)[None], th, filt)[0, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    other = iradon(sino, th, circle=True, filter_name="hann" if filt == "ramp" else "ramp")
    assert np.abs(got - other).max() > 1e-2  # the filters differ: the check can fail


def test_fbp_of_full_views_is_close_and_sparse_views_are_worse(sl):
    x = torch.from_numpy(sl)[None, None]
    err = {v: float((physics.fbp(physics.radon(x, physics.ct_angles(v)), physics.ct_angles(v)) - x).abs().mean())
           for v in (30, 180)}
    assert err[180] < 0.05 and err[30] > 1.3 * err[180]


def test_radon_is_differentiable_and_linear():
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    th = physics.ct_angles(7)
    s = torch.randn(2, 16, 7, dtype=torch.float64)
    (physics.radon(x, th) * s).sum().backward()
    # <R x, s> = <x, R^T s>: the gradient is the adjoint, and R is linear, so <R x, s> = <x, grad>
    torch.testing.assert_close((physics.radon(x.detach(), th) * s).sum(), (x.detach() * x.grad).sum())


def test_low_dose_follows_the_poisson_model():
    n, s0, photons = 64, 20.0, 1e4
    sino = torch.full((50, n, 40), s0, dtype=torch.float64)
    noisy = physics.low_dose(sino, photons, torch.Generator().manual_seed(0))
    mu = physics.mu_scale(n)
    lam = photons * np.exp(-mu * s0)  # expected counts
    # delta method: Var[-log(c / I0) / mu] = 1 / (lam mu^2)
    assert abs(float(noisy.mean()) - s0) < 0.01 * s0
    assert abs(float(noisy.var()) * lam * mu**2 - 1) < 0.05
    fewer = physics.low_dose(sino, photons / 10, torch.Generator().manual_seed(0))
    assert float(fewer.var()) > 5 * float(noisy.var())  # a tenth of the dose: ten times the variance
    again = physics.low_dose(sino, photons, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)


def test_centred_fft_is_orthonormal_and_centred():
    x = torch.rand(3, 1, 32, 32, dtype=torch.float64)
    k = physics.fft2c(x.to(torch.complex128))
    torch.testing.assert_close(k.abs().pow(2).sum((-2, -1)), x.pow(2).sum((-2, -1)).to(torch.float64))  # Parseval
    torch.testing.assert_close(physics.ifft2c(k).real, x)
    dc = k[..., 16, 16]  # the zero frequency sits at N // 2
    torch.testing.assert_close(dc.real, x.sum((-2, -1)) / 32)


@pytest.mark.parametrize("accel, cf", [(4, 0.08), (8, 0.04)])
@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_cartesian_masks_follow_fastmri(accel, cf, kind):
    n = 128
    m = physics.cartesian_mask(n, accel, cf, kind, seed=3)
    assert m.dtype == bool and m.shape == (n,) and m.sum() == round(n / accel)
    low = round(n * cf)
    start = (n - low + 1) // 2
    assert m[start:start + low].all() and n // 2 in range(start, start + low)
    assert np.array_equal(m, physics.cartesian_mask(n, accel, cf, kind, seed=3))
    if kind == "random":
        assert not np.array_equal(m, physics.cartesian_mask(n, accel, cf, kind, seed=4))
    else:
        gaps = np.diff(np.flatnonzero(m[:start]))
        assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1 + low  # evenly spread outside the centre
    with pytest.raises(GankitError, match="centre"):
        physics.cartesian_mask(n, accel, 0.5, kind)


def test_data_consistency_is_exact_on_the_mask():
    torch.manual_seed(0)
    n = 64
    x_true = torch.from_numpy(ellipse_phantoms(2, n, 5)[:, None])
    mask = torch.from_numpy(physics.cartesian_mask(n, 4, 0.08, "random", 1))
    k = physics.undersample(x_true, mask)  # (2, 1, n, n) complex64
    guess = torch.rand(2, 1, n, n)  # anything
    out = physics.data_consistency(guess, k, mask)
    k_out = physics.fft2c(out)
    scale = k.abs().max()
    assert float(((k_out - k) * mask).abs().max() / scale) < 1e-6  # float32 FFT round trip
    torch.testing.assert_close(k_out[..., ~mask], physics.fft2c(guess.to(torch.complex64))[..., ~mask])
    assert float(physics.mri_consistency_error(out, k, mask).max()) < 1e-6
    assert float(physics.mri_consistency_error(guess, k, mask).min()) > 0.1  # without the step: far off


def test_ct_consistency_error_is_zero_for_the_truth(sl):
    x = torch.from_numpy(sl).float()[None, None]
    th = physics.ct_angles(30)
    sino = physics.radon(x, th)
    assert float(physics.ct_consistency_error(x, sino, th)) < 1e-6
    assert float(physics.ct_consistency_error(physics.fbp(sino, th), sino, th)) > 1e-3


def test_phantoms_are_seeded_split_and_inside_the_circle():
    a, b = ellipse_phantoms(8, 32, 0), ellipse_phantoms(8, 32, 0)
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert not np.any(a[:, ~circle(32)]) and (a.reshape(8, -1).std(1) > 0.05).all()
    tr, te = load_recon("phantoms", "train", 32), load_recon("phantoms:test", "train", 32)
    assert len(tr) == 2000 and len(te) == 100 and not torch.equal(tr.x[:100], te.x)
    slp = load_recon("shepp-logan", size=32)
    assert slp.x.shape == (1, 1, 32, 32) and 0.5 < float(slp.x.max()) <= 1  # the 1.0 rim, thin at 32 px
    with pytest.raises(GankitError, match="phantoms:test"):
        load_recon("phantoms:val")


def test_a_folder_of_greyscale_scans_is_a_source(tmp_path):
    from PIL import Image

    g = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(g.integers(0, 256, (40, 44), dtype=np.uint8)).save(tmp_path / "scans" / split / f"{i}.png")
    d = load_recon(str(tmp_path / "scans"), "train", 32)
    assert d.x.shape[1:] == (1, 32, 32) and 0 <= float(d.x.min()) and float(d.x.max()) <= 1
    assert not d.x[:, 0][:, ~torch.from_numpy(circle(32))].any() and float(d.x.mean()) > 0.2  # cut to the circle (CT)
    mri = load_recon(str(tmp_path / "scans"), "test", 32, circle_cut=False)
    assert mri.x[:, 0, 0, 0].max() > 0  # MRI keeps the corners
    with pytest.raises(GankitError, match="reconstruction sources"):
        load_recon(str(tmp_path / "missing"))


def test_kspace_noise_follows_its_definition():
    # complex Gaussian on the sampled columns only: E|n|^2 = sigma^2, real and imaginary parts
    # independent with sigma^2 / 2 each; the orthonormal FFT keeps E|n|^2 per pixel in image space
    sigma, n = 0.05, 32
    mask = torch.from_numpy(physics.cartesian_mask(n, 4, 0.08, "random", 0))
    k = torch.zeros(300, 1, n, n, dtype=torch.complex128)
    noisy = physics.kspace_noise(k, sigma, mask, torch.Generator().manual_seed(0))
    on, off = noisy[..., mask], noisy[..., ~mask]
    assert torch.equal(off, torch.zeros_like(off))
    assert abs(float(on.abs().pow(2).mean()) / sigma**2 - 1) < 0.02
    assert abs(float(on.real.var()) / (sigma**2 / 2) - 1) < 0.03 and abs(float(on.imag.var()) / (sigma**2 / 2) - 1) < 0.03
    assert abs(float((on.real * on.imag).mean())) < 0.02 * sigma**2
    full = physics.kspace_noise(k[:20], sigma, torch.ones(n, dtype=torch.bool), torch.Generator().manual_seed(1))
    assert abs(float(physics.ifft2c(full).abs().pow(2).mean()) / sigma**2 - 1) < 0.03
    again = physics.kspace_noise(k, sigma, mask, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)


def test_measure_adds_mri_noise_at_recon_noise():
    from gankit.config import load_config
    from gankit.tasks.recon.measure import Measure

    cfg = load_config("recon-mri", overrides=["recon.size=32", "recon.noise=0.02"])
    m, clean = Measure.of(cfg.recon), Measure.of(load_config("recon-mri", overrides=["recon.size=32"]).recon)
    assert m.mask == clean.mask and "noise 0.02" in m.describe()
    x = torch.from_numpy(ellipse_phantoms(50, 32, 0)[:, None])
    diff = m.measure(x, torch.Generator().manual_seed(0)) - clean.measure(x)
    on = diff[..., m.mask_tensor()]
    assert abs(float(on.abs().pow(2).mean()) / 0.02**2 - 1) < 0.05
    assert float(diff[..., ~m.mask_tensor()].abs().max()) == 0
