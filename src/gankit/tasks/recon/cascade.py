"""The physics-in-the-loop generator for reconstruction (recon.g_arch: cascade): K small residual
CNNs, each followed by the measurement model, so every block sees what the measurements still
say about its estimate. In image units ([0, 1]); m is the run's `Measure` (angles or mask).

    MRI (Deep Cascade, Schlemper et al. 2017):
        x_0     = ifft2c(k)                                         zero-filled, complex
        z_k     = x_k + CNN_k([Re x_k, Im x_k])                      (B, 2, N, N) -> correction
        x_{k+1} = ifft2c(M k + (1 - M) fft2c(z_k))                   hard data consistency
    every block ends on the measured columns, so the output's k-space equals k on the mask to
    float precision (a soft (k_pred + lambda k)/(1 + lambda) blend inside would not, and the
    task promises it of the output).

    CT (learned gradient, Adler & Oktem 2017):
        x_0     = FBP(s)                                            the run's filter
        g_k     = FBP_hann(s - radon(x_k))                           the residual's back-projection:
                                                                    a preconditioned gradient step
        x_{k+1} = C (x_k + CNN_k([x_k, g_k]))                        C: the scanner's circle
    CT has no exact consistency step (30 views do not determine the image); the re-projection
    error is measured, as before.

CNN_k: `depth` 3x3 convs, model.g_width wide, ReLU between, no norm; the last conv is
zero-initialised, so an untrained cascade returns the classical reconstruction (MRI: zero-filled
with its columns put back, the same image). Fully convolutional: any image size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.tasks.recon import physics

GRADIENT_FILTER = "hann"  # the residual's FBP: the Hann window damps the noise the ramp amplifies


def block(cin: int, cout: int, width: int, depth: int) -> nn.Sequential:
    """`depth` 3x3 convs cin -> width -> ... -> cout with ReLU between; the last zero-initialised."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Conv2d(cin if i == 0 else width, cout if i == depth - 1 else width, 3, 1, 1))
        if i < depth - 1:
            layers.append(nn.ReLU())
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class Cascade(nn.Module):
    """(classical reconstruction y in [0, 1], measurements, Measure) -> the estimate in [0, 1]:
    real (B, 1, N, N) for CT, complex and exactly data-consistent for MRI."""

    def __init__(self, modality: str, cascades: int = 5, depth: int = 5, width: int = 32):
        super().__init__()
        if modality not in ("ct", "mri"):
            raise ValueError(f"cascade modality {modality!r}: expected ct or mri")
        self.modality = modality
        # MRI: (Re, Im) in and out; CT: (x_k, g_k) in, the correction out
        cin, cout = (2, 2) if modality == "mri" else (2, 1)
        self.blocks = nn.ModuleList(block(cin, cout, width, depth) for _ in range(cascades))

    def forward(self, y: Tensor, meas: Tensor, m) -> Tensor:
        if self.modality == "mri":
            return self._mri(meas, m.mask_tensor(meas.device))
        return self._ct(y, meas, m.angles)

    def _mri(self, k: Tensor, mask: Tensor) -> Tensor:
        x = physics.ifft2c(k)  # (B, 1, N, N) complex: the zero-filled image
        for cnn in self.blocks:
            z = torch.cat([x.real, x.imag], 1)  # (B, 2, N, N)
            z = z + cnn(z)
            x = physics.data_consistency(torch.complex(z[:, :1], z[:, 1:]), k, mask)
        return x

    def _ct(self, y: Tensor, sino: Tensor, angles) -> Tensor:
        circle = physics.circle_mask(y.shape[-1], y.device)
        x = y  # (B, 1, N, N)
        for cnn in self.blocks:
            g = physics.fbp(sino - physics.radon(x, angles), angles, GRADIENT_FILTER)  # (B, 1, N, N)
            x = (x + cnn(torch.cat([x, g], 1))) * circle
        return x
