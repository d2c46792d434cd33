"""The vocoder's mel spectrogram, and the classical way back from it (Griffin-Lim).

    mel(x) = log(clamp(M |STFT(x)|, 1e-5))      (B, n_mels, T / hop)

    STFT    Hann window of `win` samples (periodic), `n_fft`-point FFT, hop `hop`; the clip is
            reflect-padded by (n_fft - hop) / 2 on both sides and framed without centring, so a
            clip of T samples (T a multiple of hop) has exactly T / hop frames and a generator
            whose upsampling product is `hop` returns T samples (HiFi-GAN's framing)
    |.|     sqrt(re^2 + im^2 + 1e-9): a magnitude whose gradient is finite at 0
    M       the Slaney mel filterbank (n_mels, n_fft / 2 + 1) between fmin and fmax: triangles
            whose corners are equally spaced on the Slaney mel scale (linear below 1 kHz, 200/3 Hz
            per mel; logarithmic above, 27 mels per factor 6.4), each scaled to area 1 by
            2 / (f_right - f_left) (librosa.filters.mel's default, which HiFi-GAN uses; librosa is
            not a dependency, the filterbank is written here from that definition)

The defaults (`MelSpec()`): 16 kHz, 80 bands, n_fft 1024, hop 256, win 1024, fmin 0, fmax 8000.

`griffin_lim_mel` is the baseline the vocoder replaces: the mel is inverted to a linear magnitude
by the filterbank's pseudo-inverse (negative values clipped to 0), then the phase is estimated by
Griffin-Lim (Griffin & Lim 1984) on the same framing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.speech import RATE

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class MelSpec:
    rate: int = 16_000
    n_mels: int = 80
    n_fft: int = 1024
    hop: int = 256
    win: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0

    @property
    def pad(self) -> int:
        return (self.n_fft - self.hop) // 2


def spec_of(cfg) -> MelSpec:
    """The run config's mel parameters (`vocoder:` section)."""
    v = cfg.vocoder
    return MelSpec(RATE, v.n_mels, v.n_fft, v.hop, v.win, v.fmin, v.fmax)


def hz_to_mel(f: Tensor) -> Tensor:
    """Slaney's mel scale: f / (200/3) below 1 kHz, 15 + 27 log(f / 1000) / log(6.4) above."""
    f = torch.as_tensor(f, dtype=torch.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + torch.log(f.clamp_min(1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(f >= 1000.0, log, lin)


def mel_to_hz(m: Tensor) -> Tensor:
    m = torch.as_tensor(m, dtype=torch.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * torch.exp((m - 15.0) * (math.log(6.4) / 27.0))
    return torch.where(m >= 15.0, log, lin)


def filterbank(s: MelSpec) -> Tensor:
    """The Slaney-normalised mel filterbank (n_mels, n_fft / 2 + 1), float32."""
    freqs = torch.linspace(0, s.rate / 2, s.n_fft // 2 + 1, dtype=torch.float64)  # FFT bin centres (Hz)
    corners = mel_to_hz(torch.linspace(float(hz_to_mel(s.fmin)), float(hz_to_mel(s.fmax)), s.n_mels + 2,
                                       dtype=torch.float64))  # (n_mels + 2,) Hz
    left, centre, right = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    up = (freqs - left) / (centre - left)
    down = (right - freqs) / (right - centre)
    tri = torch.clamp(torch.minimum(up, down), min=0)  # (n_mels, n_bins)
    return (tri * (2.0 / (right - left))).float()


_CACHE: dict = {}


def _consts(s: MelSpec, device) -> tuple[Tensor, Tensor]:
    key = (s, str(device))
    if key not in _CACHE:
        _CACHE[key] = (filterbank(s).to(device), torch.hann_window(s.win, device=device))
    return _CACHE[key]


def magnitude(x: Tensor, s: MelSpec) -> Tensor:
    """|STFT| (B, n_fft / 2 + 1, T / hop) of clips (B, T) on the vocoder's framing."""
    _, window = _consts(s, x.device)
    x = F.pad(x[:, None], (s.pad, s.pad), mode="reflect")[:, 0]
    X = torch.stft(x, s.n_fft, s.hop, s.win, window=window, center=False, return_complex=True)
    return torch.sqrt(X.real ** 2 + X.imag ** 2 + 1e-9)


def mel(x: Tensor, s: MelSpec = MelSpec()) -> Tensor:
    """Clips (B, T) float in [-1, 1] -> log mel spectrograms (B, n_mels, T // hop)."""
    fb, _ = _consts(s, x.device)
    return torch.log(torch.clamp(fb @ magnitude(x, s), min=LOG_FLOOR))


def frames_of(samples: int, s: MelSpec) -> int:
    return samples // s.hop


def overlap_add(X: Tensor, s: MelSpec, length: int) -> Tensor:
    """The inverse of `magnitude`'s framing for a complex STFT X (B, n_bins, F): each frame's
    inverse FFT windowed and overlap-added, divided by the summed squared window (least squares,
    Griffin & Lim's eq. 6), the reflect padding cut off: (B, length)."""
    _, window = _consts(s, X.device)
    n = X.shape[-1]
    frames = torch.fft.irfft(X, s.n_fft, dim=1)  # (B, n_fft, F)
    w = F.pad(window, ((s.n_fft - s.win) // 2, (s.n_fft - s.win + 1) // 2))  # stft's own centring of win in n_fft
    total = (n - 1) * s.hop + s.n_fft
    y = F.fold(frames * w[:, None], (1, total), (1, s.n_fft), stride=(1, s.hop))[:, 0, 0]  # (B, total)
    env = F.fold((w ** 2)[None, :, None].expand(1, -1, n), (1, total), (1, s.n_fft), stride=(1, s.hop))[0, 0, 0]
    y = y / env.clamp_min(1e-8)
    return y[:, s.pad:s.pad + length]


def mel_to_linear(m: Tensor, s: MelSpec) -> Tensor:
    """Log mel (B, n_mels, F) -> a linear magnitude (B, n_bins, F) by the filterbank's
    pseudo-inverse, negatives clipped to 0 (the least-squares inverse; not NNLS)."""
    fb, _ = _consts(s, m.device)
    key = ("pinv", s, str(m.device))
    if key not in _CACHE:
        _CACHE[key] = torch.linalg.pinv(fb.double()).float()
    return (_CACHE[key] @ m.exp()).clamp_min(0)


def griffin_lim_mel(m: Tensor, s: MelSpec, iters: int, generator: torch.Generator | None = None) -> Tensor:
    """Log mel (B, n_mels, F) -> clips (B, F hop): pseudo-inverse to a linear magnitude, then
    `iters` Griffin-Lim iterations from a random phase (`generator`) on the mel's own framing."""
    mag = mel_to_linear(m, s)
    length = m.shape[-1] * s.hop
    phase = torch.rand(mag.shape, generator=generator).to(mag.device) * 2 * torch.pi
    X = mag * torch.exp(1j * phase)
    _, window = _consts(s, m.device)
    for _ in range(iters):
        x = overlap_add(X, s, length)
        xp = F.pad(x[:, None], (s.pad, s.pad), mode="reflect")[:, 0]
        Y = torch.stft(xp, s.n_fft, s.hop, s.win, window=window, center=False, return_complex=True)
        X = mag * torch.exp(1j * Y.angle())
    return overlap_add(X, s, length)
