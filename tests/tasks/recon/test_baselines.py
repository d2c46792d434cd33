"""The classical recon baselines: where each must beat the trivial one, data consistency by
construction, fastMRI masks, shapes and dtypes, and one-line errors on bad measurements."""

import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import radon, resize

from gankit.errors import GankitError
from gankit.tasks.recon import baselines as B

N = 64


@pytest.fixture(scope="module")
def phantom():
    return np.clip(resize(shepp_logan_phantom(), (N, N), anti_aliasing=True), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def ct30(phantom):
    angles = B.views(30)
    return radon(phantom.astype(np.float64), theta=angles, circle=True).astype(np.float32), angles


def psnr(gt, x):
    return peak_signal_noise_ratio(gt, x, data_range=1.0)


def test_fft2c_is_centred_orthonormal_and_inverted():
    x = np.random.default_rng(0).random((8, 8))
    k = B.fft2c(x)
    assert np.isclose(k[4, 4], x.sum() / 8)  # DC at (N/2, N/2), scaled by 1/sqrt(N*N)
    assert np.isclose(np.linalg.norm(k), np.linalg.norm(x))
    np.testing.assert_allclose(B.ifft2c(k).real, x, atol=1e-12)


def test_ct_baselines_shapes_range_and_ordering(phantom, ct30):
    sino, angles = ct30
    out = {"fbp": B.fbp(sino, angles), "hann": B.fbp(sino, angles, "hann"), "sart": B.sart(sino, angles, iters=3),
           "fbp+tv": B.tv_ct(sino, angles, weight=0.01), "sart-tv": B.tv_ct(sino, angles, weight=0.001, iters=5)}
    for name, x in out.items():
        assert x.shape == (N, N) and x.dtype == np.float32, name
        assert 0.0 <= x.min() and x.max() <= 1.0, name
    p = {k: psnr(phantom, x) for k, x in out.items()}
    assert p["sart"] >= p["fbp"] and p["sart-tv"] >= p["fbp"] + 2.0, p
    # the iterative ones fit the measured sinogram better than the FBP image does
    assert B.ct_dc_error(out["sart"], sino, angles) < B.ct_dc_error(out["fbp"], sino, angles)


def test_fbp_tv_removes_low_dose_noise():
    # FBP + TV denoising is for noise on piecewise-constant objects (on Shepp-Logan at 64 px its
    # thin features lose more than the noise costs): an ellipse of 0.5 holding one of 1.0
    c = (np.arange(N) - (N - 1) / 2) / (N / 2)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    gt = (0.5 * (xx**2 / 0.49 + yy**2 / 0.25 <= 1) + 0.5 * ((xx - 0.2) ** 2 / 0.04 + yy**2 / 0.01 <= 1)).astype(np.float32)
    angles = B.views(180)
    sino = B.low_dose(radon(gt.astype(np.float64), theta=angles, circle=True), 1e3, mu_scale=5.12 / N)
    assert psnr(gt, B.tv_ct(sino, angles, weight=0.02)) >= psnr(gt, B.fbp(sino, angles)) + 1.0


def test_ct_dc_error_is_zero_for_the_truth(phantom, ct30):
    sino, angles = ct30
    assert B.ct_dc_error(phantom, sino, angles) < 1e-6
    assert B.ct_dc_error(np.zeros_like(phantom), sino, angles) == pytest.approx(1.0)


@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04)])
@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_mask_follows_fastmri(accel, cf, kind):
    n = 320
    m = B.cartesian_mask(n, accel, kind=kind, seed=3)
    assert m.dtype == bool and m.shape == (n,)
    assert m.sum() == round(n / accel)
    n_center = round(n * cf)
    pad = (n - n_center + 1) // 2
    assert m[pad:pad + n_center].all() and m[n // 2]  # the fully sampled centre holds DC
    if kind == "random":
        assert not np.array_equal(m, B.cartesian_mask(n, accel, kind=kind, seed=4))
    np.testing.assert_array_equal(m, B.cartesian_mask(n, accel, kind=kind, seed=3))


def test_mri_baselines(phantom):
    k = B.fft2c(phantom).astype(np.complex64)
    m = B.cartesian_mask(N, 4, seed=0)
    zf, cs = B.zero_filled(k, m), B.tv_cs(k, m, weight=0.003, iters=30)
    for x in (zf, cs):
        assert x.shape == (N, N) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert psnr(phantom, cs) >= psnr(phantom, zf) + 1.0
    # both complex estimates end on the measured lines (zero-filling by construction, TV-CS
    # after its final data-consistency step) ...
    for est in (B.zero_filled(k, m, magnitude=False), B.tv_cs(k, m, weight=0.003, iters=30, magnitude=False)):
        assert est.dtype == np.complex64 and B.mri_dc_error(est, k, m) < 1e-6
    # ... while the unsampled lines are not the measurement: the error measure sees them apart
    assert B.mri_dc_error(B.zero_filled(k, ~m, magnitude=False), k, m) == pytest.approx(1.0)


def test_low_dose_is_noisy_and_unbiased_on_average():
    sino = np.full((64, 10), 40.0, dtype=np.float32)
    noisy = B.low_dose(sino, photons=1e4, mu_scale=0.04, seed=0)
    assert noisy.dtype == np.float32 and noisy.std() > 0.1
    assert abs(noisy.mean() - 40.0) < 0.5
    np.testing.assert_array_equal(noisy, B.low_dose(sino, photons=1e4, mu_scale=0.04, seed=0))


@pytest.mark.parametrize("call,match", [
    (lambda s, a: B.fbp(s, a[:20]), "30 angle columns but 20 angles"),
    (lambda s, a: B.sart(s[:, :, None], a), "expected real \\(n_detectors, n_angles\\)"),
    (lambda s, a: B.tv_ct(s.astype(np.complex64), a, 0.1), "expected real"),
    (lambda s, a: B.fbp(s, a, filter="shepp"), "expected 'ramp' or 'hann'"),
    (lambda s, a: B.ct_dc_error(np.zeros((64, 64)), np.where(s > 1, np.nan, s), a), "NaN"),
])
def test_bad_sinogram_is_one_line(ct30, call, match):
    with pytest.raises(GankitError, match=match) as e:
        call(*ct30)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kspace,mask,match", [
    (np.zeros((64, 64), np.float32), np.ones(64, bool), "expected complex \\(N, N\\)"),
    (np.zeros((64, 32), np.complex64), np.ones(32, bool), "expected complex \\(N, N\\)"),
    (np.zeros((2, 64, 64), np.complex64), np.ones(64, bool), "expected complex \\(N, N\\)"),
    (np.zeros((64, 64), np.complex64), np.ones(63, bool), "expected bool \\(64,\\)"),
    (np.zeros((64, 64), np.complex64), np.ones(64, np.float32), "expected bool \\(64,\\)"),
])
def test_bad_kspace_is_one_line(kspace, mask, match):
    for call in (B.zero_filled, B.tv_cs):
        with pytest.raises(GankitError, match=match) as e:
            call(kspace, mask)
        assert "\n" not in str(e.value)
