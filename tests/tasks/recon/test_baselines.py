"""The classical recon baselines: where each must beat the trivial one, data consistency by
construction, fastMRI masks, shapes and dtypes, and one-line errors on bad measurements."""

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import radon, resize

from gankit.errors import GankitError
from gankit.tasks.recon import baselines as B
from gankit.tasks.recon import physics

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
    clean = torch.from_numpy(radon(gt.astype(np.float64), theta=angles, circle=True))[None]
    sino = physics.low_dose(clean, 2e2, torch.Generator().manual_seed(0))[0].numpy()  # visibly noisy FBP
    assert psnr(gt, B.tv_ct(sino, angles, weight=0.02)) >= psnr(gt, B.fbp(sino, angles)) + 1.0


def test_ct_dc_error_is_zero_for_the_truth(phantom, ct30):
    sino, angles = ct30
    assert B.ct_dc_error(phantom, sino, angles) < 1e-6
    assert B.ct_dc_error(np.zeros_like(phantom), sino, angles) == pytest.approx(1.0)


def test_numpy_fft_agrees_with_the_task_physics():
    # the baselines' numpy fft2c/ifft2c are twins of physics' torch ones: one convention
    x = np.random.default_rng(0).random((2, 1, 12, 12)) + 1j * np.random.default_rng(1).random((2, 1, 12, 12))
    k = B.fft2c(x[1, 0])
    np.testing.assert_allclose(k, physics.fft2c(torch.from_numpy(x))[1, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(B.ifft2c(k), physics.ifft2c(torch.from_numpy(k)).numpy(), atol=1e-12)


def test_mri_baselines(phantom):
    k = B.fft2c(phantom).astype(np.complex64)
    m = physics.cartesian_mask(N, 4, 0.08, seed=0)
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
