"""The classical reconstructions a recon GAN must beat, and the scores they are compared by.

CT (parallel beam, scikit-image's `radon`/`iradon` convention, circle=True): filtered
back-projection, SART, and TV-regularised reconstruction. MRI (Cartesian, centred orthonormal
FFT): zero-filled inverse FFT and TV compressed sensing. Numpy and scikit-image only, so that a
baseline never depends on the model code it is compared with.

Conventions shared with the task (images float32 (N, N) in [0, 1]; a sinogram float32
(n_detectors, n_angles) with angles in degrees; k-space complex64 (N, N); a mask bool over the N
columns, i.e. the phase-encode lines). The measurements themselves (masks, low-dose counts, k-space
noise) come from the task's one forward model, `gankit.tasks.recon.physics`; `fft2c`/`ifft2c` are
numpy twins of its torch ones, so that TV-CS iterates in numpy (tests/tasks/recon/test_baselines.py
checks that they agree).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from skimage.restoration import denoise_tv_chambolle
from skimage.transform import iradon, iradon_sart, radon

from gankit.errors import GankitError

SART_RELAXATION = 0.15  # scikit-image's default; below ~0.3 SART stays stable without a line search


def views(n: int) -> np.ndarray:
    """`n` equally spaced projection angles over [0, 180) degrees (180 = the full set)."""
    return np.linspace(0.0, 180.0, n, endpoint=False)


# ---- MRI forward model --------------------------------------------------------------------


def fft2c(x: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2-D FFT: the DC term sits at (N/2, N/2) and ||fft2c(x)|| = ||x||."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))


def ifft2c(k: np.ndarray) -> np.ndarray:
    """The inverse of `fft2c`."""
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho"))


def _check_kspace(kspace: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kspace, mask = np.asarray(kspace), np.asarray(mask)
    if kspace.ndim != 2 or kspace.shape[0] != kspace.shape[1] or not np.iscomplexobj(kspace):
        raise GankitError(f"k-space: got {kspace.dtype} {kspace.shape}; expected complex (N, N) "
                          "(complex64, centred as fft2c returns it)")
    if mask.dtype != bool or mask.shape != (kspace.shape[1],):
        raise GankitError(f"k-space mask: got {mask.dtype} {mask.shape}; expected bool ({kspace.shape[1]},), "
                          "one entry per phase-encode column")
    if not np.isfinite(kspace).all():
        raise GankitError("k-space: contains NaN or infinity; expected finite complex values")
    return kspace.astype(np.complex128), mask


def mri_dc_error(image: np.ndarray, kspace: np.ndarray, mask: np.ndarray) -> float:
    """Relative data-consistency error on the sampled lines: ||M(F x - y)|| / ||M y||."""
    kspace, mask = _check_kspace(kspace, mask)
    diff = (fft2c(np.asarray(image, dtype=np.complex128)) - kspace)[:, mask]
    return float(np.linalg.norm(diff) / max(np.linalg.norm(kspace[:, mask]), 1e-12))


def _image(x: np.ndarray) -> np.ndarray:
    return np.clip(np.abs(x), 0.0, 1.0).astype(np.float32)


def zero_filled(kspace: np.ndarray, mask: np.ndarray, *, magnitude: bool = True) -> np.ndarray:
    """The unsampled lines set to zero, then the inverse FFT: |ifft2c(M y)| clipped to [0, 1].
    With `magnitude=False` the complex estimate itself (complex64), exact on the sampled lines;
    the magnitude and the clip are what move the returned image off them."""
    kspace, mask = _check_kspace(kspace, mask)
    x = ifft2c(kspace * mask[None, :])
    return _image(x) if magnitude else x.astype(np.complex64)


def tv_cs(kspace: np.ndarray, mask: np.ndarray, weight: float = 0.02, iters: int = 50, *,
          magnitude: bool = True) -> np.ndarray:
    """TV compressed sensing by projections onto convex sets with a TV proximal step: from the
    zero-filled estimate, `iters` times (1) take the real part and clip it to [0, 1] (the object
    is a real, non-negative image), (2) TV-denoise it (Chambolle, `weight`), (3) replace the
    sampled k-space lines by the measured ones. The last operation is (3), so the complex
    estimate (`magnitude=False`) is data-consistent to rounding; the returned image is its
    magnitude clipped to [0, 1]."""
    kspace, mask = _check_kspace(kspace, mask)
    if iters < 1 or weight < 0:
        raise GankitError(f"tv_cs: iters={iters}, weight={weight}; expected iters >= 1 and weight >= 0")
    measured = kspace * mask[None, :]
    x = ifft2c(measured)
    for _ in range(iters):
        u = denoise_tv_chambolle(np.clip(x.real, 0.0, 1.0), weight=weight)
        k = fft2c(u)
        k[:, mask] = measured[:, mask]
        x = ifft2c(k)
    return _image(x) if magnitude else x.astype(np.complex64)


# ---- CT ------------------------------------------------------------------------------------


def _check_sino(sino: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sino, angles = np.asarray(sino), np.asarray(angles, dtype=np.float64)
    if sino.ndim != 2 or not np.isrealobj(sino):
        raise GankitError(f"sinogram: got {sino.dtype} {sino.shape}; expected real (n_detectors, n_angles)")
    if angles.ndim != 1 or sino.shape[1] != len(angles):
        raise GankitError(f"sinogram: {sino.shape[1]} angle columns but {angles.size} angles given; "
                          "expected one column per angle, shape (n_detectors, n_angles)")
    if not np.isfinite(sino).all():
        raise GankitError("sinogram: contains NaN or infinity; expected finite line integrals")
    return sino.astype(np.float64), angles


def ct_dc_error(image: np.ndarray, sino: np.ndarray, angles: np.ndarray) -> float:
    """Relative data-consistency error: ||radon(x) - y|| / ||y|| over the measured angles."""
    sino, angles = _check_sino(sino, angles)
    reproj = radon(np.asarray(image, dtype=np.float64), theta=angles, circle=True)
    return float(np.linalg.norm(reproj - sino) / max(np.linalg.norm(sino), 1e-12))


def _circle(n: int) -> np.ndarray:
    """The reconstruction circle of radon/iradon with circle=True (centre n // 2, radius n // 2):
    the object is assumed to lie inside it, so the iterative images are zeroed outside it."""
    yy, xx = np.ogrid[:n, :n]
    return (yy - n // 2) ** 2 + (xx - n // 2) ** 2 <= (n // 2) ** 2


def fbp(sino: np.ndarray, angles: np.ndarray, filter: Literal["ramp", "hann"] = "ramp") -> np.ndarray:
    """Filtered back-projection (ramp, or ramp times a Hann window, which trades resolution for
    less streak noise), clipped to [0, 1]."""
    if filter not in ("ramp", "hann"):
        raise GankitError(f"fbp: filter {filter!r}; expected 'ramp' or 'hann'")
    sino, angles = _check_sino(sino, angles)
    x = iradon(sino, theta=angles, filter_name=filter, circle=True)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def sart(sino: np.ndarray, angles: np.ndarray, iters: int = 3) -> np.ndarray:
    """SART (scikit-image's `iradon_sart`, relaxation 0.15), each pass starting from the previous
    image, values clipped to [0, 1] inside every pass (a box constraint on the object); zero
    outside the reconstruction circle."""
    if iters < 1:
        raise GankitError(f"sart: iters={iters}; expected >= 1")
    sino, angles = _check_sino(sino, angles)
    x = None
    for _ in range(iters):
        x = iradon_sart(sino, theta=angles, image=x, relaxation=SART_RELAXATION, clip=(0.0, 1.0))
    return (np.clip(x, 0.0, 1.0) * _circle(len(x))).astype(np.float32)


def tv_ct(sino: np.ndarray, angles: np.ndarray, weight: float = 0.05, iters: int = 0) -> np.ndarray:
    """TV-regularised CT, zero outside the reconstruction circle. `iters=0`: FBP (ramp) then
    Chambolle TV denoising with `weight`. `iters>0`: SART-TV, the alternation ASD-POCS is built
    on: `iters` times, one SART pass from the current image (the data step, relaxation 0.15,
    clipped to [0, 1]) then Chambolle TV denoising with `weight` (the regularisation step). Not the minimiser of a stated objective:
    a fixed weight per pass is a heuristic trade of data fit for smoothness. (Proximal gradient
    with radon's unfiltered back-projection as A^T needed hundreds of steps to reach SART's fit
    at 30 views, so SART is the data step.)"""
    if weight < 0 or iters < 0:
        raise GankitError(f"tv_ct: weight={weight}, iters={iters}; expected both >= 0")
    sino, angles = _check_sino(sino, angles)
    if iters == 0:
        x = np.clip(iradon(sino, theta=angles, filter_name="ramp", circle=True), 0.0, 1.0)
        x = denoise_tv_chambolle(x, weight=weight)
        return (np.clip(x, 0.0, 1.0) * _circle(len(x))).astype(np.float32)
    x = None
    for _ in range(iters):
        x = iradon_sart(sino, theta=angles, image=x, relaxation=SART_RELAXATION, clip=(0.0, 1.0))
        x = denoise_tv_chambolle(x, weight=weight) * _circle(len(x))
    return np.clip(x, 0.0, 1.0).astype(np.float32)
