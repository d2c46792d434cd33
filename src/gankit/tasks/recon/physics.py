"""The forward models of the reconstruction task, in torch, batched and differentiable.

CT (parallel beam, scikit-image's geometry with circle=True; images zero outside the inscribed
circle, centre pixel N // 2, angles in degrees):

    radon(x, angles)        (B, 1, N, N) -> (B, N, A): rotate by each angle (bilinear) and sum
                            the rows, as skimage.transform.radon does
    fbp(sino, angles, filt) (B, N, A) -> (B, 1, N, N): ramp (or Hann-windowed ramp) filtering in
                            Fourier space, then linear-interpolation back-projection, scaled by
                            pi / (2 A), as skimage.transform.iradon does
    low_dose(sino, I0, g)   counts ~ Poisson(I0 exp(-mu sino)), clamped >= 1; -log(counts / I0) / mu

MRI (single coil, Cartesian, phase encodes along the columns):

    fft2c / ifft2c          centred orthonormal 2-D FFT over the last two axes
    cartesian_mask(...)     bool (N,) over the columns: fastMRI's fully sampled centre plus
                            random or equispaced others, N / accel columns in all
    kspace_noise(k, s, m)   k + n on the sampled columns, n complex Gaussian with E|n|^2 = s^2
                            (real and imaginary parts N(0, s^2 / 2)); the FFT is orthonormal, so
                            s is also the std per pixel of the same noise in image space
    data_consistency(x,k,m) fft2c(x) with the sampled columns replaced by the measured ones,
                            back to image space (complex): its k-space equals k on the mask

Images are float in [0, 1]; sinograms (n_detectors, n_angles) as skimage's `radon` returns.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError

FULL_VIEWS = 180  # the full set: np.linspace(0, 180, 180, endpoint=False)
CHUNK = 1 << 24  # elements per grid_sample / gather block, so memory stays bounded at 180 views


def ct_angles(views: int = FULL_VIEWS) -> np.ndarray:
    """`views` angles in degrees, evenly spread over [0, 180)."""
    return np.linspace(0.0, 180.0, views, endpoint=False)


def circle_mask(n: int, device=None) -> Tensor:
    """bool (N, N): the reconstruction circle (skimage's: distance from N // 2 at most N // 2)."""
    r = torch.arange(n, device=device) - n // 2
    return r[:, None] ** 2 + r[None, :] ** 2 <= (n // 2) ** 2


def _angle_chunks(n_angles: int, per_angle: int):
    step = max(1, CHUNK // max(1, per_angle))
    return [slice(i, min(n_angles, i + step)) for i in range(0, n_angles, step)]


def radon(x: Tensor, angles) -> Tensor:
    """Parallel-beam projections of (B, 1, N, N) images at `angles` (degrees) -> (B, N, A).

    For angle a, skimage rotates the image so that output pixel (r, c) reads input
    (row, col) = (ctr - sin a (c - ctr) + cos a (r - ctr), ctr + cos a (c - ctr) + sin a (r - ctr))
    bilinearly (zero outside), and sums over r; grid_sample does the same reads."""
    b, _, n, _ = x.shape
    th = torch.as_tensor(np.deg2rad(np.asarray(angles, dtype=np.float64)), dtype=x.dtype, device=x.device)
    ctr = n // 2
    i = torch.arange(n, dtype=x.dtype, device=x.device) - ctr
    r, c = i[:, None], i[None, :]  # (N, 1) rows, (1, N) columns, centred
    out = []
    for s in _angle_chunks(len(th), b * n * n):
        cos, sin = th[s].cos()[:, None, None], th[s].sin()[:, None, None]  # (a, 1, 1)
        row = ctr - sin * c + cos * r  # (a, N, N) input rows read by each output pixel
        col = ctr + cos * c + sin * r
        grid = torch.stack([col, row], -1) * (2.0 / (n - 1)) - 1.0  # align_corners=True: pixel k -> 2k/(N-1) - 1
        grid = grid.reshape(1, -1, n, 2).expand(b, -1, -1, -1)  # (B, a N, N, 2)
        rot = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        out.append(rot.reshape(b, -1, n, n).sum(2))  # (B, a, N): the sum over rows of each rotated image
    return torch.cat(out, 1).transpose(1, 2)  # (B, N, A)


def _fourier_filter(size: int, filt: str) -> np.ndarray:
    """The ramp filter's frequency response, built from its band-limited spatial kernel (Kak &
    Slaney, ch. 3, eq. 61: h(0) = 1/4, h(k) = -1 / (pi k)^2 for odd k, 0 for even k; which removes
    the DC bias of sampling |w| directly), optionally times a Hann window."""
    k = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
    h = np.zeros(size)
    h[0] = 0.25
    h[1::2] = -1.0 / (np.pi * k) ** 2
    f = 2.0 * np.real(np.fft.fft(h))
    if filt == "hann":
        f *= np.fft.fftshift(np.hanning(size))
    elif filt != "ramp":
        raise GankitError(f"FBP filter {filt!r}: expected ramp or hann")
    return f


def fbp(sino: Tensor, angles, filt: str = "ramp") -> Tensor:
    """Filtered back-projection of (B, N, A) sinograms at `angles` (degrees) -> (B, 1, N, N).

    As skimage's iradon (circle=True, linear interpolation): the detector row is zero-padded as
    iradon pads it (centred in the square's diagonal, then to a power of two >= 64) so the circular
    convolution with the filter wraps into the same zeros; then each pixel (r, c) adds the
    filtered projection at t = (c - ctr) cos a - (r - ctr) sin a, linearly interpolated (0 outside
    the diagonal), and the sum is scaled by pi / (2 A) and cut to the circle."""
    b, n, a = sino.shape
    if len(angles) != a:
        raise GankitError(f"a sinogram with {a} angles and {len(angles)} angles given")
    diag = int(math.ceil(math.sqrt(2) * n))
    before = diag // 2 - n // 2
    size = max(64, int(2 ** math.ceil(math.log2(2 * diag))))
    f = torch.as_tensor(_fourier_filter(size, filt), dtype=sino.dtype, device=sino.device)
    padded = torch.nn.functional.pad(sino, (0, 0, before, size - n - before))  # (B, size, A)
    # the filtered rows over the whole diagonal: filtering spreads a projection past the detector's
    # ends, and pixels near the circle's edge read those values, as iradon's do
    q = torch.fft.ifft(torch.fft.fft(padded, dim=1) * f[:, None], dim=1).real[:, :diag]  # (B, diag, A)
    qt = q.transpose(1, 2)  # (B, A, diag): one filtered projection per angle
    th = torch.as_tensor(np.deg2rad(np.asarray(angles, dtype=np.float64)), dtype=sino.dtype, device=sino.device)
    ctr = n // 2
    i = torch.arange(n, dtype=sino.dtype, device=sino.device) - ctr
    xpr, ypr = i[:, None], i[None, :]  # skimage's mgrid: xpr the row offset, ypr the column offset
    img = sino.new_zeros(b, n * n)
    for s in _angle_chunks(a, b * n * n):
        t = ypr * th[s].cos()[:, None, None] - xpr * th[s].sin()[:, None, None]  # (a, N, N) detector positions
        pos = (t + diag // 2).reshape(len(t), -1)  # (a, N N) in padded detector-index units
        i0 = pos.floor().clamp(0, diag - 2)
        w = pos - i0
        inside = (pos >= 0) & (pos <= diag - 1)
        i0 = i0.long().unsqueeze(0).expand(b, -1, -1)
        v0, v1 = qt[:, s].gather(2, i0), qt[:, s].gather(2, i0 + 1)  # (B, a, N N)
        img = img + ((v0 * (1 - w) + v1 * w) * inside).sum(1)
    img = img.reshape(b, 1, n, n) * (math.pi / (2 * a))
    return img * circle_mask(n, sino.device)


def mu_scale(n: int) -> float:
    """Attenuation per unit of image intensity per pixel for low-dose simulation: 2 / N, so a ray
    through N pixels of intensity 1 is attenuated by e^-2 at any image size."""
    return 2.0 / n


def low_dose(sino: Tensor, photons: float, gen: torch.Generator | None = None) -> Tensor:
    """The sinogram measured with `photons` incident photons per ray: transmitted counts ~
    Poisson(I0 exp(-mu sino)), clamped at >= 1 (log of 0), converted back to line integrals."""
    mu = mu_scale(sino.shape[1])
    expected = photons * torch.exp(-sino.clamp_min(0) * mu)
    counts = torch.poisson(expected, generator=gen).clamp_min(1.0)
    return -torch.log(counts / photons) / mu


# -- MRI ----------------------------------------------------------------------------------------


def fft2c(x: Tensor) -> Tensor:
    """Centred orthonormal 2-D FFT over the last two axes (complex result)."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=dims), norm="ortho"), dim=dims)


def ifft2c(k: Tensor) -> Tensor:
    """The inverse of `fft2c`."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=dims), norm="ortho"), dim=dims)


def center_fraction_for(accel: int) -> float:
    """fastMRI's fully sampled centre: 8% of the columns at 4x, 4% at 8x (32 / (100 accel))."""
    return 0.32 / accel


def cartesian_mask(n: int, accel: int, center_fraction: float, kind: str = "random", seed: int = 0) -> np.ndarray:
    """bool (N,): the sampled columns (phase-encode lines) of an N x N k-space, centred.

    fastMRI's rule: round(N * center_fraction) columns around N // 2 always, plus others chosen
    so that round(N / accel) columns are sampled in all: `random` draws them uniformly without
    replacement, `equispaced` takes every k-th of the remaining columns from a random offset.
    Seeded: the same arguments give the same mask."""
    total, low = round(n / accel), round(n * center_fraction)
    if not (1 <= low <= total <= n):
        raise GankitError(f"mask for N={n}, accel={accel}, center_fraction={center_fraction}: the centre "
                          f"({low} columns) must be at least 1 and at most N / accel ({total})")
    mask = np.zeros(n, dtype=bool)
    start = (n - low + 1) // 2
    mask[start:start + low] = True
    rest = np.flatnonzero(~mask)
    need = total - low
    rng = np.random.default_rng(seed)
    if kind == "random":
        mask[rng.choice(rest, size=need, replace=False)] = True
    elif kind == "equispaced":
        if need:
            picks = (rng.integers(0, len(rest)) + np.floor(np.arange(need) * len(rest) / need)).astype(int)
            mask[rest[picks % len(rest)]] = True
    else:
        raise GankitError(f"mask kind {kind!r}: expected random or equispaced")
    return mask


def undersample(x: Tensor, mask: Tensor) -> Tensor:
    """Measured k-space of real images x (B, 1, N, N): fft2c(x) on the sampled columns, 0 elsewhere."""
    return fft2c(x.to(torch.complex64 if x.dtype == torch.float32 else torch.complex128)) * mask


def kspace_noise(kspace: Tensor, sigma: float, mask: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """Measured k-space with thermal noise: complex Gaussian n, E|n|^2 = sigma^2 (real and imaginary
    parts independent N(0, sigma^2 / 2)), added on the sampled columns only (the others are not
    measured and stay 0)."""
    n = torch.randn(kspace.shape, dtype=kspace.dtype, device=kspace.device, generator=gen)  # E|n|^2 = 1
    return kspace + sigma * n * mask


def zero_filled(kspace: Tensor) -> Tensor:
    """The classical MRI inverse: ifft2c of the zero-filled k-space, its real part (the objects are
    real; the imaginary part is the aliasing's)."""
    return ifft2c(kspace).real


def data_consistency(x: Tensor, kspace: Tensor, mask: Tensor) -> Tensor:
    """The image whose k-space is fft2c(x) off the mask and the measured `kspace` on it (complex)."""
    k = fft2c(x if x.is_complex() else x.to(kspace.dtype))
    return ifft2c(torch.where(mask, kspace, k))


def mri_consistency_error(x: Tensor, kspace: Tensor, mask: Tensor) -> Tensor:
    """Per image (B,): |M (fft2c(x) - k)| / |M k|, the relative misfit on the sampled columns."""
    k = fft2c(x if x.is_complex() else x.to(kspace.dtype))
    num = ((k - kspace) * mask).abs().flatten(1).norm(dim=1)
    return num / (kspace * mask).abs().flatten(1).norm(dim=1).clamp_min(1e-12)


def ct_consistency_error(x: Tensor, sino: Tensor, angles) -> Tensor:
    """Per image (B,): |radon(x) - sino| / |sino|, the relative misfit of the re-projected image."""
    diff = (radon(x, angles) - sino).flatten(1).norm(dim=1)
    return diff / sino.flatten(1).norm(dim=1).clamp_min(1e-12)
