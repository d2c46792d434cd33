"""The denoising task's maths, in model space ([-1, 1]); y is the noisy image, x the clean one.

    out  = y + G(y)   (residual)  or  G(y)             (B, C, H, W); G is the pix2pix U-Net
    D:  pair.d(D(cat(y, x)), D(cat(y, out)))         a conditional PatchGAN (pix2pix): is this
                                                     the clean image of that noisy one?
    G:  gan pair.g(D(cat(y, out))) + l1 |out - x|_1   (mean over pixels and channels)
"""

from __future__ import annotations

from torch import Tensor

from gankit.tasks.phases_common import PAIRED_STATS, PairedObjective
from gankit.tasks.phases_common import estimate as restore  # the clean image's estimate from y
from gankit.tasks.phases_common import paired_step

STATS = PAIRED_STATS
Objective = PairedObjective


def denoise_phase(st, y: Tensor, x: Tensor) -> Tensor:
    return paired_step(st, y, x, restore(st.fwd["G"], y, st.obj.residual))
