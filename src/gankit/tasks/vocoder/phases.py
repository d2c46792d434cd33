"""HiFi-GAN's objective (Kong et al. 2020, eqs. 1-6), one step.

    y      real segments (B, 1, segment) in [-1, 1];  m = mel(y) (B, n_mels, segment / hop)
    y_hat  G(m)                                      (B, 1, segment)
    D:     sum over the 8 sub-discriminators k (5 periods, 3 scales or 3 resolutions) of
           E[(D_k(y) - 1)^2] + E[D_k(y_hat)^2]                          (least squares, eq. 1)
    G:     sum_k E[(D_k(y_hat) - 1)^2]                                   (eq. 2)
           + fm_weight  sum_k sum_l E|D_k^l(y) - D_k^l(y_hat)|            (feature matching, eq. 4;
                                                                           l over D_k's feature maps)
           + mel_weight ||mel(y) - mel(y_hat)||_1 (mean)                  (eq. 3; 2 and 45, the paper's)
           + stft_weight sum_r (SC_r + MAG_r) / R                          (Parallel WaveGAN's multi-
                                                                           resolution STFT loss; 0: off)
    "mel" steps (the first vocoder.gan_start): G on mel_weight x the mel L1 (+ the STFT loss), no D.
    "warm" steps (vocoder.d_start to gan_start): the same G step, and D's update (eq. 1) on G's
    detached output, so that G's first adversarial step meets discriminators already trained.

    Multi-resolution STFT loss (Yamamoto et al. 2020, eqs. 4-6), R = 3 resolutions
    (n_fft, hop, window) = (512, 50, 240), (1024, 120, 600), (2048, 240, 1200), Hann windows:
           SC_r  = || |S_r(y)| - |S_r(y_hat)| ||_F / || |S_r(y)| ||_F          (spectral convergence)
           MAG_r = mean | log |S_r(y)| - log |S_r(y_hat)| |                   (log-magnitude L1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.tasks.phases_common import frozen, stats
from gankit.tasks.vocoder.mel import MelSpec, mel

STATS = ("loss_d", "loss_g", "adv_g", "fm", "mel_l1", "d_real", "d_fake", "gan_steps", "stft", "d_steps")
RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))  # Parallel WaveGAN's (n_fft, hop, window)

Outs = list[tuple[Tensor, list[Tensor]]]  # per sub-discriminator: (logits (B, n), feature maps)


@dataclass(frozen=True)
class Objective:
    spec: MelSpec
    mel_weight: float = 45.0
    fm_weight: float = 2.0
    stft_weight: float = 0.0
    discs: tuple[str, ...] = ("MPD", "MSD")  # the discriminators' names in st.nets (MSD or MRD beside MPD)


def d_loss(real: Outs, fake: Outs) -> Tensor:
    """sum_k E[(D_k(y) - 1)^2] + E[D_k(y_hat)^2]"""
    return sum(((r - 1) ** 2).mean() + (f ** 2).mean() for (r, _), (f, _) in zip(real, fake))


def g_adv_loss(fake: Outs) -> Tensor:
    """sum_k E[(D_k(y_hat) - 1)^2]"""
    return sum(((f - 1) ** 2).mean() for f, _ in fake)


def feature_matching(real: Outs, fake: Outs) -> Tensor:
    """sum_k sum_l E|D_k^l(y) - D_k^l(y_hat)|, the real features held fixed."""
    return sum((fr.detach() - ff).abs().mean() for (_, rs), (_, fs) in zip(real, fake) for fr, ff in zip(rs, fs))


def mel_l1(m_real: Tensor, y_hat: Tensor, spec: MelSpec) -> Tensor:
    """mean |mel(y) - mel(y_hat)|: y_hat (B, 1, T), m_real (B, n_mels, T / hop)."""
    return (m_real - mel(y_hat[:, 0], spec)).abs().mean()


def _stft_mag(x: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    X = torch.stft(x, n_fft, hop, win, window=torch.hann_window(win, device=x.device), return_complex=True)
    return torch.sqrt(X.real ** 2 + X.imag ** 2 + 1e-7)  # (B, n_fft / 2 + 1, frames); finite gradient at 0


def stft_loss(y: Tensor, y_hat: Tensor) -> Tensor:
    """sum_r (SC_r + MAG_r) / R of segments (B, 1, T) (the module docstring's formula)."""
    total = y.new_zeros(())
    for n_fft, hop, win in RESOLUTIONS:
        a, b = _stft_mag(y[:, 0], n_fft, hop, win), _stft_mag(y_hat[:, 0], n_fft, hop, win)
        sc = torch.linalg.norm(a - b) / torch.linalg.norm(a)  # Frobenius over the whole batch, as PWG's code
        total = total + sc + (a.log() - b.log()).abs().mean()
    return total / len(RESOLUTIONS)


def spectral(obj: Objective, m: Tensor, y: Tensor, y_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """G's reconstruction terms: (mel_weight x mel L1 + stft_weight x the STFT loss, the mel L1,
    the STFT loss (0 when stft_weight is 0: not computed))."""
    l1 = mel_l1(m, y_hat, obj.spec)
    if not obj.stft_weight:
        return obj.mel_weight * l1, l1, torch.zeros((), device=y.device)
    sl = stft_loss(y, y_hat)
    return obj.mel_weight * l1 + obj.stft_weight * sl, l1, sl


def d_step(st, y: Tensor, y_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The discriminators' update, real segments against G's, detached: (loss, mean D(y), mean D(y_hat))."""
    Ds = [st.fwd[n] for n in st.obj.discs]  # MPD and MSD (or MRD)
    fake = y_hat.detach()
    real, fake = [D(y) for D in Ds], [D(fake) for D in Ds]
    loss_d = sum(d_loss(r, f) for r, f in zip(real, fake))
    st.update("D", loss_d)
    with torch.no_grad():
        d_real = torch.stack([r.mean() for outs in real for r, _ in outs]).mean()
        d_fake = torch.stack([f.mean() for outs in fake for f, _ in outs]).mean()
    return loss_d, d_real, d_fake


def mel_phase(st, y: Tensor, warm: bool = False) -> Tensor:
    """G alone on the mel L1 (+ the STFT loss) (the first vocoder.gan_start steps); `warm` (from
    vocoder.d_start on): the discriminators learn on G's detached output first (`d_step`)."""
    obj = st.obj
    m = mel(y[:, 0], obj.spec)
    y_hat = st.fwd["G"](m)
    d = dict(zip(("loss_d", "d_real", "d_fake"), d_step(st, y, y_hat)), d_steps=1.0) if warm else {}
    loss, l1, sl = spectral(obj, m, y, y_hat)
    st.update("G", loss)
    return stats(STATS, loss_g=loss, mel_l1=l1, stft=sl, **d)


def gan_phase(st, y: Tensor) -> Tensor:
    obj, G = st.obj, st.fwd["G"]
    Ds = [st.fwd[n] for n in obj.discs]  # MPD and MSD (or MRD)
    m = mel(y[:, 0], obj.spec)  # (B, n_mels, F)
    y_hat = G(m)  # (B, 1, F hop)

    # 1. the discriminators, one update: real segments against G's, detached
    loss_d, d_real, d_fake = d_step(st, y, y_hat)

    # 2. G through the updated, frozen discriminators
    with frozen(*(st.nets[n] for n in obj.discs)):
        real, gen = [D(y) for D in Ds], [D(y_hat) for D in Ds]
        adv = sum(g_adv_loss(g) for g in gen)
        fm = sum(feature_matching(r, g) for r, g in zip(real, gen))
        recon, l1, sl = spectral(obj, m, y, y_hat)
        loss_g = adv + obj.fm_weight * fm + recon
        st.update("G", loss_g)
    return stats(STATS, loss_d=loss_d, loss_g=loss_g, adv_g=adv, fm=fm, mel_l1=l1, d_real=d_real,
                 d_fake=d_fake, gan_steps=1.0, stft=sl, d_steps=1.0)
