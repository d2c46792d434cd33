"""SpecGAN's audio representation (Donahue et al. 2019): clips <-> normalised log spectrograms.

    S      = log(|STFT(x)| + 1e-6)              Hann window of 256 samples (16 ms at 16 kHz), hop
                                                128 (8 ms): 129 frames x 129 bins for 16,384
                                                samples; the last frame and the highest bin are
                                                dropped: (128, 128), frequency by time
    S_norm = clip((S - mu_f) / sigma_f, -3, 3) / 3    each frequency bin standardised by its mean
                                                and std over the training clips, clipped at 3 std
    back:  S = 3 S_norm sigma_f + mu_f; |X| = exp(S) - 1e-6; the phase by Griffin-Lim (Griffin &
           Lim 1984; 16 iterations, as the paper) with the dropped bin and frame as zero magnitude
"""

from __future__ import annotations

import torch
from torch import Tensor

N_FFT, HOP, SIZE = 256, 128, 128
EPS = 1e-6


def _window(device) -> Tensor:
    return torch.hann_window(N_FFT, device=device)


def log_spectrogram(x: Tensor) -> Tensor:
    """Clips (B, T) float -> log magnitudes (B, 128, 128), frequency x time."""
    X = torch.stft(x, N_FFT, HOP, window=_window(x.device), center=True, return_complex=True)  # (B, 129, frames)
    return torch.log(X.abs()[:, :SIZE, :SIZE] + EPS)


def bin_stats(spec: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frequency mean and std (128,) of log spectrograms (N, 128, 128), over clips and frames."""
    flat = spec.transpose(0, 1).reshape(SIZE, -1)
    return flat.mean(1), flat.std(1).clamp_min(1e-3)


def normalise(spec: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    return ((spec - mu[:, None]) / sigma[:, None]).clamp(-3, 3) / 3


def denormalise(s: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    return 3 * s * sigma[:, None] + mu[:, None]


def to_image(s: Tensor) -> Tensor:
    """Normalised spectrograms (B, 1, 128, 128) in [-1, 1] -> uint8 images, low frequencies at the bottom."""
    return ((s.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).flip(2)


def griffin_lim(logmag: Tensor, length: int, iters: int = 16, generator: torch.Generator | None = None) -> Tensor:
    """Clips (B, length) whose STFT magnitude approximates exp(logmag) (B, 128, 128)."""
    b = len(logmag)
    frames = length // HOP + 1
    mag = torch.zeros(b, N_FFT // 2 + 1, frames, device=logmag.device)
    mag[:, :SIZE, :SIZE] = (logmag.exp() - EPS).clamp_min(0)
    phase = torch.rand(mag.shape, device=mag.device, generator=generator) * 2 * torch.pi
    w = _window(mag.device)
    X = mag * torch.exp(1j * phase)
    for _ in range(iters):
        x = torch.istft(X, N_FFT, HOP, window=w, center=True, length=length)
        Y = torch.stft(x, N_FFT, HOP, window=w, center=True, return_complex=True)
        X = mag * torch.exp(1j * Y.angle())
    return torch.istft(X, N_FFT, HOP, window=w, center=True, length=length)
