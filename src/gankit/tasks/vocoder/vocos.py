"""Vocos's generator (Siuzdak 2023): the waveform's STFT predicted at the mel frame rate, then an
inverse STFT written as one fixed transposed convolution (exportable to ONNX).

    Vocos        mel (B, n_mels, F) -> waveform (B, 1, F hop)
                 conv 7 (n_mels -> dim), LayerNorm; L ConvNeXt blocks (depthwise conv 7,
                 LayerNorm, dim -> mlp dim -> dim pointwise with GELU, times a learnt per-channel
                 scale initialised at 1 / L, added to the input); LayerNorm; a linear head to
                 n_fft + 2 numbers per frame: log-magnitude a and phase p of the n_fft / 2 + 1 bins
                 S = exp(min(a, log 100)) (cos p + i sin p)       (the paper's clip of |S| at 100)
                 y = iSTFT(S): Hann window of n_fft, hop `hop`, "same" framing (below)
                 Every layer runs at F frames: no upsampling, which is why it is fast on a CPU.

    iSTFT        frame_f[n] = w[n] (1/N) sum_k c_k (Re S_kf cos(2 pi k n / N) - Im S_kf sin(2 pi k n / N)),
                 c_0 = c_{N/2} = 1, else 2 (the inverse real DFT: irfft), N = n_fft;
                 y[t] = sum_f frame_f[t - f hop] / sum_f w[t - f hop]^2         (least-squares
                 overlap-add, Griffin & Lim's eq. 6; torch.istft's normalisation).
                 The window times the DFT basis is one (n_fft + 2, 1, N) kernel of a stride-hop
                 conv_transpose1d over [Re S; Im S]; the envelope is the same transposed
                 convolution of ones with w^2. torch.istft itself does not export with the
                 TorchScript ONNX exporter; these two convolutions do, at any number of frames.
    "same"       (n_fft - hop) / 2 samples cut from each end of the (F - 1) hop + n_fft overlap-add:
                 F hop samples, frame f centred on sample f hop + hop / 2, as the mel's frame f is
                 (mel.py's framing), so G's frames line up with the mel's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAG_CLIP = math.log(100.0)  # |S| <= 100, Vocos's clip (exp(a) overflows for a wild head)


class ISTFT(nn.Module):
    """Complex STFT as (B, n_fft + 2, F) = [Re; Im] -> (B, 1, F hop - 2 trim + n_fft - hop) samples."""

    def __init__(self, n_fft: int, hop: int, trim: int | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.trim = (n_fft - hop) // 2 if trim is None else trim
        n, k = torch.arange(n_fft, dtype=torch.float64), torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        c = torch.full_like(k, 2.0)
        c[0] = 1.0
        if n_fft % 2 == 0:
            c[-1] = 1.0
        ang = 2 * math.pi * k[:, None] * n[None] / n_fft  # (K, N)
        w = torch.hann_window(n_fft, dtype=torch.float64)
        basis = torch.cat([c[:, None] * torch.cos(ang), -c[:, None] * torch.sin(ang)]) * w / n_fft  # (2K, N)
        self.register_buffer("basis", basis.float()[:, None], persistent=False)  # (2K, 1, N)
        self.register_buffer("win_sq", (w ** 2).float()[None, None], persistent=False)  # (1, 1, N)

    def forward(self, spec: Tensor) -> Tensor:
        y = F.conv_transpose1d(spec, self.basis, stride=self.hop)  # (B, 1, (F - 1) hop + N)
        ones = torch.ones_like(spec[:1, :1])  # (1, 1, F): follows F when exported
        env = F.conv_transpose1d(ones, self.win_sq, stride=self.hop)  # (1, 1, (F - 1) hop + N)
        end = y.shape[-1] - self.trim
        return y[..., self.trim:end] / env[..., self.trim:end].clamp_min(1e-11)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, mlp: int, scale: float):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up, self.down = nn.Linear(dim, mlp), nn.Linear(mlp, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))  # layer scale

    def forward(self, x: Tensor) -> Tensor:  # (B, dim, F)
        h = self.norm(self.dw(x).transpose(1, 2))  # (B, F, dim)
        h = self.down(F.gelu(self.up(h))) * self.gamma
        return x + h.transpose(1, 2)


class Vocos(nn.Module):
    def __init__(self, n_mels: int, dim: int, layers: int, mlp: int, n_fft: int, hop: int):
        super().__init__()
        self.hop = hop
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, mlp, 1.0 / layers) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop)

    def spectrum(self, m: Tensor) -> Tensor:
        """Log mel (B, n_mels, F) -> [Re S; Im S] (B, n_fft + 2, F)."""
        x = self.norm_in(self.embed(m).transpose(1, 2)).transpose(1, 2)  # (B, dim, F)
        for b in self.blocks:
            x = b(x)
        h = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, F)
        a, p = h.chunk(2, dim=1)  # log-magnitude, phase: (B, n_fft / 2 + 1, F) each
        mag = torch.exp(a.clamp(max=MAG_CLIP))
        return torch.cat([mag * torch.cos(p), mag * torch.sin(p)], 1)

    def forward(self, m: Tensor) -> Tensor:
        return self.istft(self.spectrum(m))  # (B, 1, F hop)

    def ordered_blocks(self) -> list[nn.Module]:
        return [nn.ModuleList([self.embed, self.norm_in]), *self.blocks, nn.ModuleList([self.norm_out, self.head])]
