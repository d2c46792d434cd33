"""A run's measurement model: from a true image to its measurements, from measurements to the
classical reconstruction, and the data-consistency error of an estimate. Training, evaluation
and `gankit recon --simulate` all go through `Measure`, so they simulate the same scanner.

    CT:  sino = radon(x, angles) (+ low-dose noise at recon.photons); classical = fbp(sino)
    MRI: k = M fft2c(x) (M: recon.mask's columns, seed recon.mask_seed; + noise at recon.noise);
         classical = Re ifft2c(k)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gankit.tasks.recon import physics


@dataclass(frozen=True)
class Measure:
    modality: str  # "ct" | "mri"
    angles: tuple[float, ...] = ()  # CT, degrees
    photons: float | None = None  # CT low dose
    filter: str = "ramp"  # CT
    mask: tuple[bool, ...] = ()  # MRI: sampled columns
    noise: float | None = None  # MRI: complex Gaussian k-space noise, E|n|^2 = noise^2

    @classmethod
    def of(cls, r, n: int | None = None, views: int | None = None, accel: int | None = None) -> Measure:
        """The measurement model of a `recon` config section at side n (default r.size); `views` /
        `accel` override the config's (--simulate ct:views=60)."""
        n = r.size if n is None else n
        if r.modality == "ct":
            return cls("ct", tuple(physics.ct_angles(views or r.views)), r.photons, r.filter)
        a = accel or r.accel
        cf = r.centre() if accel is None or r.center_fraction is not None else physics.center_fraction_for(a)
        return cls("mri", mask=tuple(physics.cartesian_mask(n, a, cf, r.mask, r.mask_seed).tolist()), noise=r.noise)

    def mask_tensor(self, device=None) -> Tensor:
        return torch.tensor(self.mask, dtype=torch.bool, device=device)

    def describe(self) -> str:
        if self.modality == "ct":
            dose = f"{self.photons:g} photons per ray" if self.photons else "noiseless"
            return f"CT: {len(self.angles)} views over [0, 180), {dose}, FBP ({self.filter})"
        m = np.asarray(self.mask)
        noise = f", complex Gaussian noise {self.noise:g}" if self.noise else ""
        return f"MRI: {int(m.sum())} of {len(m)} k-space columns ({len(m) / m.sum():.2f}x){noise}, zero-filled inverse FFT"

    @torch.no_grad()
    def measure(self, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Measurements of images x (B, 1, N, N) in [0, 1]: sinograms (B, N, A) or k-space (B, 1, N, N) complex."""
        if self.modality == "ct":
            sino = physics.radon(x, self.angles)
            return physics.low_dose(sino, self.photons, gen) if self.photons else sino
        mask = self.mask_tensor(x.device)
        k = physics.undersample(x, mask)
        return physics.kspace_noise(k, self.noise, mask, gen) if self.noise else k

    @torch.no_grad()
    def classical(self, meas: Tensor) -> Tensor:
        """The classical reconstruction (B, 1, N, N) from measurements."""
        if self.modality == "ct":
            return physics.fbp(meas, self.angles, self.filter)
        return physics.zero_filled(meas)

    def consistent(self, x: Tensor, meas: Tensor) -> Tensor:
        """MRI: x (in [0, 1]) with the measured columns put back (complex); CT: x unchanged."""
        if self.modality == "ct":
            return x
        return physics.data_consistency(x, meas, self.mask_tensor(x.device))

    @torch.no_grad()
    def error(self, x: Tensor, meas: Tensor) -> Tensor:
        """(B,): the relative misfit of estimates x (B, 1, N, N), real or complex, to the measurements."""
        if self.modality == "ct":
            return physics.ct_consistency_error(x.real if x.is_complex() else x, meas, self.angles)
        return physics.mri_consistency_error(x, meas, self.mask_tensor(x.device))
