"""The reconstruction task's ONNX graphs (`ReconTask.onnx_graphs`).

CT: the FBP image in, G's estimate out (the classical reconstruction stays outside the graph:
scikit-image's `iradon(..., filter_name="ramp", circle=True)` gives the same image as
`physics.fbp`). MRI: the zero-filled image, the measured k-space and the sampling mask in, the
data-consistent estimate out, the data-consistency step in the graph.

The MRI step is an FFT, which torch.onnx's TorchScript exporter cannot trace (no complex tensors
in ONNX; `torch.fft` has no symbolic there). The centred orthonormal DFT is a matrix, though:
fft2c(x) = C_H x C_W with C_N[a, b] = exp(-2 pi i (a - c)(b - c) / N) / sqrt(N), c = N // 2
(fftshift and ifftshift are index shifts by c, folded into the phase), and its inverse is the
conjugate. `_Dft` builds those matrices from the input's shape with real operations (the phase
taken modulo N in integers first, so that float32 sees angles below 2 pi at any N) and applies
them as real/imaginary matmuls, which ONNX has: O(N^3) against the FFT's O(N^2 log N).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gankit.tasks.base import OnnxGraph
from gankit.tasks.onnx_common import IMAGE_NOTE, AnySize, image_graph, pad_multiple
from gankit.tasks.recon import physics
from gankit.tasks.recon.phases import refine


def dft_matrix(n: int, device=None) -> tuple[Tensor, Tensor]:
    """(real, imaginary) float32 (n, n) parts of the centred orthonormal DFT: fft2c(x) = C x C^T
    (C is symmetric). Traced with `n` a shape value, so the graph builds it for any size."""
    t = torch.arange(n, device=device) - n // 2  # int64: the centred frequency / position
    r = torch.remainder(t[:, None] * t[None, :], n).float()  # (n, n) in [0, n): exp's period folded out
    phase = r * (-2 * math.pi / n)
    s = 1 / math.sqrt(n) if isinstance(n, int) else torch.rsqrt(torch.as_tensor(n, dtype=torch.float32))
    return torch.cos(phase) * s, torch.sin(phase) * s


def data_consistency_real(x: Tensor, k: Tensor, mask: Tensor) -> Tensor:
    """`physics.data_consistency` in real arithmetic: images x (B, 1, H, W) real, measured k-space
    k (B, 2, H, W) as (real, imaginary), mask (B, 1, H, W) 1 where measured -> the estimate
    (B, 2, H, W) as (real, imaginary)."""
    h, w = x.shape[-2], x.shape[-1]
    hr, hi = dft_matrix(h, x.device)
    wr, wi = dft_matrix(w, x.device)
    # forward: K = C_H x C_W, x real
    ar, ai = hr @ x, hi @ x  # C_H x
    kr, ki = ar @ wr - ai @ wi, ar @ wi + ai @ wr
    m = mask > 0.5
    kr, ki = torch.where(m, k[:, :1], kr), torch.where(m, k[:, 1:], ki)
    # inverse: conj(C_H) K conj(C_W)
    pr, pi = kr @ wr + ki @ wi, ki @ wr - kr @ wi
    return torch.cat([hr @ pr + hi @ pi, hr @ pi - hi @ pr], 1)


class _Refine(nn.Module):
    """The classical image (model space) -> G's estimate (model space), its residual added."""

    def __init__(self, G: nn.Module, residual: bool):
        super().__init__()
        self.G, self.residual = G, residual

    def forward(self, y: Tensor) -> Tensor:
        return refine(self.G, y, self.residual)


class _MriConsistent(nn.Module):
    """(zero-filled image in model space, k-space, mask) -> the data-consistent estimate in image
    units, (real, imaginary); the network part padded to its multiple (`AnySize`), the DFT not."""

    def __init__(self, G: nn.Module, residual: bool, multiple: int):
        super().__init__()
        self.net = AnySize(_Refine(G, residual), multiple)

    def forward(self, image: Tensor, kspace: Tensor, mask: Tensor) -> Tensor:
        out = (self.net(image) + 1) * 0.5  # (B, 1, H, W) in image units, as the k-space is
        return data_consistency_real(out, kspace, mask)


def mri_example(n: int, hw: tuple[int, int] | None, gen: torch.Generator, size: int, accel: int) -> dict:
    """Phantom-like inputs: random images, their k-space measured through a fastMRI mask, and the
    zero-filled image from it (model space)."""
    h, w = hw or (size, size)
    x = torch.rand(n, 1, h, w, generator=gen)
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    cols = torch.from_numpy(physics.cartesian_mask(w, accel, physics.center_fraction_for(accel), "random", seed))
    k = physics.undersample(x, cols)  # (n, 1, h, w) complex, zero off the mask
    return {"image": physics.zero_filled(k) * 2 - 1, "kspace": torch.cat([k.real, k.imag], 1),
            "mask": cols.float().expand(n, 1, h, w).contiguous()}


def recon_graphs(cfg, G: nn.Module) -> list[OnnxGraph]:
    r = cfg.recon
    mult = pad_multiple(G)
    if r.modality == "ct":
        return [image_graph("G", _Refine(G, r.residual), {"fbp": 1}, (r.size, r.size), mult, (
            "fbp: the filtered back-projection of the sinogram (scikit-image iradon, filter_name='ramp' or the "
            f"run's recon.filter '{r.filter}', circle=True, output_size N) as a model-space image, fbp * 2 - 1",
            "the output is not forced to agree with the sinogram: re-project it (radon) to measure its "
            "data-consistency error"))]
    if not r.data_consistency:
        return [image_graph("G", _Refine(G, r.residual), {"zero_filled": 1}, (r.size, r.size), mult, (
            "zero_filled: the real part of the inverse centred FFT of the zero-filled k-space, * 2 - 1; this run "
            "has no data-consistency step (recon.data_consistency false)",))]
    notes = (IMAGE_NOTE.split(";")[0] + " for `image`: the zero-filled reconstruction (real part of ifft2c of the "
             "masked k-space), * 2 - 1",
             "kspace: float32 (N, 2, H, W), real and imaginary parts of the measured k-space, centred orthonormal "
             "FFT of the image in [0, 1] (fftshift(fft2(ifftshift(x), norm='ortho'))), zero where not measured",
             "mask: float32 (N, 1, H, W), 1 where k-space was measured (fastMRI: whole columns)",
             "output: float32 (N, 2, H, W), real and imaginary parts of the data-consistent estimate in image "
             "units (0..1, not model space); its k-space equals `kspace` where mask is 1. An 8-bit picture is "
             "the real part clipped to [0, 1] times 255",
             f"the data-consistency step runs in the graph as DFT matrix products (ONNX has no complex FFT); G's "
             f"input is padded in the graph to multiples of {mult}, any height and width")
    return [OnnxGraph("G", _MriConsistent(G, r.residual, mult).eval(),
                      lambda n, hw, gen: mri_example(n, hw, gen, r.size, r.accel), output="output",
                      size=(r.size, r.size), multiple=1, image_inputs=("image", "kspace", "mask"), notes=notes)]
