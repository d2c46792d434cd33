"""The reconstruction task's maths, in model space ([-1, 1]); y is the classical reconstruction
(FBP or zero-filled), x the true image, k the measured k-space and M the sampled columns (MRI).

    out  = y + G(y)   (residual)  or  G(y)                     (B, 1, N, N); G a U-Net
    MRI: out = 2 Re ifft2c(M k + (1 - M) fft2c((out + 1) / 2)) - 1   the data-consistency step
    cascade: out = 2 Re G((y + 1) / 2, m) - 1    G sees the measurements m (sinogram or k-space)
                                                  and ends on its own consistency step (cascade.py)
    D:  pair.d(D(cat(y, x)), D(cat(y, out)))                    a conditional PatchGAN
    G:  gan pair.g(D(cat(y, out))) + l1 |out - x|_1              (mean over pixels)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gankit.tasks.phases_common import PAIRED_STATS, PairedObjective
from gankit.tasks.phases_common import estimate as refine  # G's estimate from y, before any DC
from gankit.tasks.phases_common import paired_step
from gankit.tasks.recon.measure import Measure
from gankit.tasks.recon.physics import data_consistency

STATS = PAIRED_STATS


@dataclass(frozen=True)
class Objective(PairedObjective):
    dc: bool = False  # MRI with recon.data_consistency
    physics: Measure | None = None  # the cascade's measurement model (recon.g_arch: cascade), else None


def consistent(out: Tensor, kspace: Tensor, mask: Tensor) -> Tensor:
    """The model-space image `out` with its k-space replaced by the measurement on the mask (real part)."""
    return data_consistency((out + 1) * 0.5, kspace, mask).real * 2 - 1


def recon_phase(st, y: Tensor, x: Tensor, meas: Tensor | None = None) -> Tensor:
    """One D and one G update; `meas` is the k-space (MRI) or the sinograms (cascade CT), else None."""
    if st.obj.physics is not None:
        out = st.fwd["G"]((y + 1) * 0.5, meas, st.obj.physics).real * 2 - 1  # (B, 1, N, N) model space
        return paired_step(st, y, x, out)
    out = refine(st.fwd["G"], y, st.obj.residual)
    if st.obj.dc:
        out = consistent(out, meas, st.data.mask)
    return paired_step(st, y, x, out)
