"""HiFi-GAN's networks (Kong et al. 2020), at any width.

    Generator     mel (B, n_mels, F) -> waveform (B, 1, F hop)
                  conv 7 (n_mels -> c), then per upsampling stage i: leaky ReLU, transposed conv
                  (stride u_i, kernel k_i, c / 2^i -> c / 2^(i+1)), then the multi-receptive-field
                  fusion: the mean of one residual block per kernel size (3, 7, 11), each block
                  three pairs of (dilated conv, conv) with skip connections; leaky ReLU, conv 7 to
                  one channel, tanh. prod(u_i) = hop, so F frames give F hop samples.
                  V1: c = 512, u = (8, 8, 2, 2), k = (16, 16, 4, 4); V2: c = 128.
    MPD           one 2-D discriminator per period p in (2, 3, 5, 7, 11): the waveform reshaped to
                  (B, 1, T / p, p) (reflect-padded to a multiple of p), so each column is every
                  p-th sample; five convs kernel (5, 1) stride (3, 1), widths d, 4d, 16d, 32d, 32d
                  (the paper's d = 32), then a (3, 1) conv to one logit map.
    MSD           three 1-D discriminators on the waveform at x1, x1/2, x1/4 (average pooling 4,
                  stride 2; MelGAN's idea, HiFi-GAN's layers): seven convs, grouped and strided
                  (strides 1, 2, 2, 4, 4, 1, 1), widths 4d, 4d, 8d, 16d, 32d, 32d, 32d (the paper's
                  d = 32: 128 ... 1024); the one on raw audio uses spectral norm.
    MRD           UnivNet's multi-resolution spectrogram discriminator (Jang et al. 2021), as Vocos
                  uses it: one 2-D discriminator per (n_fft, hop, window) in (512, 128, 512),
                  (1024, 256, 1024), (2048, 512, 2048) over the linear magnitude |STFT(x)| laid out
                  (B, 1, frames, n_fft / 2 + 1); five convs, kernels (3, 9) x 4 then (3, 3),
                  strides 1, then (1, 2) x 3 (halving the frequency axis), width c (UnivNet's 32),
                  then a (3, 3) conv to one logit map. A GAN step's discriminator cost lies in the
                  spectrogram plane, not along the 8,192 samples.

Every D returns (logits, feature maps) per sub-discriminator: the losses need both. Convolutions
carry weight normalisation, as the paper's code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

SLOPE = 0.1  # leaky ReLU slope, the paper's


def _pad(k: int, d: int = 1) -> int:
    return (k * d - d) // 2


class ResBlock(nn.Module):
    """HiFi-GAN's ResBlock1: for each dilation, x + conv_1(lrelu(conv_d(lrelu(x))))."""

    def __init__(self, c: int, k: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(c, c, k, dilation=d, padding=_pad(k, d)))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(c, c, k, padding=_pad(k))) for _ in dilations)

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class Generator(nn.Module):
    def __init__(self, n_mels: int, channels: int, rates: tuple[int, ...], kernels: tuple[int, ...],
                 res_kernels: tuple[int, ...] = (3, 7, 11), res_dilations: tuple[int, ...] = (1, 3, 5)):
        super().__init__()
        self.hop = 1
        for r in rates:
            self.hop *= r
        self.pre = weight_norm(nn.Conv1d(n_mels, channels, 7, padding=3))
        self.ups, self.mrf = nn.ModuleList(), nn.ModuleList()
        c = channels
        for u, k in zip(rates, kernels):
            # output length exactly u x input: (L - 1) u - 2 pad + k = u L when 2 pad = k - u
            self.ups.append(weight_norm(nn.ConvTranspose1d(c, c // 2, k, u, padding=(k - u) // 2)))
            c //= 2
            self.mrf.append(nn.ModuleList(ResBlock(c, rk, res_dilations) for rk in res_kernels))
        self.post = weight_norm(nn.Conv1d(c, 1, 7, padding=3))

    def forward(self, m: Tensor) -> Tensor:
        x = self.pre(m)  # (B, c, F)
        for up, blocks in zip(self.ups, self.mrf):
            x = up(F.leaky_relu(x, SLOPE))  # (B, c / 2, F u)
            x = sum(b(x) for b in blocks) / len(blocks)  # multi-receptive-field fusion
        return torch.tanh(self.post(F.leaky_relu(x)))  # (B, 1, F hop); the paper's final slope 0.01

    def ordered_blocks(self) -> list[nn.Module]:
        return [self.pre, *[nn.ModuleList([u, b]) for u, b in zip(self.ups, self.mrf)], self.post]


def by_period(x: Tensor, p: int) -> Tensor:
    """Waveforms (B, C, T) -> (B, C, ceil(T / p), p), reflect-padded at the end: column j holds
    samples j, j + p, j + 2p, ... (the periodic structure one sub-discriminator sees)."""
    b, c, t = x.shape
    if t % p:
        x = F.pad(x, (0, p - t % p), mode="reflect")
    return x.view(b, c, -1, p)


def judge(convs: nn.ModuleList, post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """A sub-discriminator's pass: leaky-ReLU conv stack, then the output conv; (scores flattened
    per item, every layer's activations for feature matching)."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodD(nn.Module):
    def __init__(self, period: int, d: int):
        super().__init__()
        self.period = period
        widths = [1, d, 4 * d, 16 * d, 32 * d, 32 * d]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1) if i < 4 else 1, padding=(2, 0)))
                                   for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        self.post = weight_norm(nn.Conv2d(32 * d, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return judge(self.convs, self.post, by_period(x, self.period))


class MultiPeriodD(nn.Module):
    def __init__(self, d: int, periods: tuple[int, ...] = (2, 3, 5, 7, 11)):
        super().__init__()
        self.subs = nn.ModuleList(PeriodD(p, d) for p in periods)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [s(x) for s in self.subs]

    def ordered_blocks(self) -> list[nn.Module]:
        return list(self.subs)


class ScaleD(nn.Module):
    def __init__(self, d: int, spectral: bool):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        w = [1, 4 * d, 4 * d, 8 * d, 16 * d, 32 * d, 32 * d, 32 * d]
        g = min(16, 4 * d)  # the paper's groups (16; 4 on the first strided layer), capped by the width
        # (kernel, stride, groups) of each conv
        shape = [(15, 1, 1), (41, 2, min(4, g)), (41, 2, g), (41, 4, g), (41, 4, g), (41, 1, g), (5, 1, 1)]
        self.convs = nn.ModuleList(norm(nn.Conv1d(w[i], w[i + 1], k, s, groups=gr, padding=_pad(k)))
                                   for i, (k, s, gr) in enumerate(shape))
        self.post = norm(nn.Conv1d(32 * d, 1, 3, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return judge(self.convs, self.post, x)


class MultiScaleD(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.subs = nn.ModuleList([ScaleD(d, True), ScaleD(d, False), ScaleD(d, False)])

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        out = []
        for i, s in enumerate(self.subs):
            if i:
                x = F.avg_pool1d(x, 4, 2, padding=2)  # x1/2, then x1/4
            out.append(s(x))
        return out

    def ordered_blocks(self) -> list[nn.Module]:
        return list(self.subs)


MRD_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))  # (n_fft, hop, window), Vocos's


def magnitude(x: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    """Waveforms (B, 1, T) -> |STFT| (B, 1, T / hop, n_fft / 2 + 1): reflect-padded by (n_fft - hop) / 2
    at each end and framed without centring, so T / hop frames; a finite gradient at |X| = 0."""
    pad = (n_fft - hop) // 2
    x = F.pad(x, (pad, pad), mode="reflect")[:, 0]
    X = torch.stft(x, n_fft, hop, win, window=torch.hann_window(win, device=x.device), center=False,
                   return_complex=True)  # (B, n_fft / 2 + 1, frames)
    return torch.sqrt(X.real ** 2 + X.imag ** 2 + 1e-9).transpose(1, 2)[:, None]


class ResolutionD(nn.Module):
    def __init__(self, resolution: tuple[int, int, int], c: int):
        super().__init__()
        self.resolution = resolution
        shape = [(1, (3, 9), 1), (c, (3, 9), (1, 2)), (c, (3, 9), (1, 2)), (c, (3, 9), (1, 2)), (c, (3, 3), 1)]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, c, k, s, padding=(k[0] // 2, k[1] // 2)))
                                   for a, k, s in shape)
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return judge(self.convs, self.post, magnitude(x, *self.resolution))


class MultiResolutionD(nn.Module):
    def __init__(self, c: int, resolutions: tuple[tuple[int, int, int], ...] = MRD_RESOLUTIONS):
        super().__init__()
        self.subs = nn.ModuleList(ResolutionD(r, c) for r in resolutions)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [s(x) for s in self.subs]

    def ordered_blocks(self) -> list[nn.Module]:
        return list(self.subs)
