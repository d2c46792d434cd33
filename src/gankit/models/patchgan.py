"""The PatchGAN discriminator (Isola et al. 2017; also CycleGAN's): one logit per patch.

    D(x) -> logits     x: (B, in_ch, H, W); logits: (B, 1, h, w), each judging the input patch
                       of side `receptive_field(n_layers)` under it

pix2pix's D judges an (input, output) pair concatenated on channels, so the caller passes
in_ch = input channels + output channels; CycleGAN's D judges one image (in_ch = its channels).

The paper's 70 x 70 patch at 256 px (n_layers=3) scaled to smaller images by `layers_for`,
which picks the n_layers whose receptive field is closest to 70 * size / 256:

    size   target   n_layers   receptive field   logit map
      28     7.7        1            16            12 x 12
      32     8.8        1            16            14 x 14
      64    17.5        1            16            30 x 30
     128    35.0        2            34            30 x 30
     256    70.0        3            70            30 x 30
"""

from __future__ import annotations

from torch import Tensor, nn

from gankit.models.base import sn
from gankit.models.dcgan import _init
from gankit.models.unet import norm2d

KERNEL = 4


def _strides(n_layers: int) -> list[int]:
    """Strides of the 4x4 convs, first to last: n_layers stride-2 ones, then the two stride-1
    ones (the widest conv and the 1-channel output conv). The net and its receptive field are
    both built from this list."""
    if n_layers < 1:
        raise ValueError(f"PatchGAN n_layers must be at least 1, got {n_layers}")
    return [2] * n_layers + [1, 1]


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch one logit sees: 16, 34, 70, 142 for n_layers 1..4.
    Walking back from one output: a k x k conv of stride s turns r positions into (r-1)s + k."""
    r = 1
    for s in reversed(_strides(n_layers)):
        r = (r - 1) * s + KERNEL
    return r


def layers_for(size: int, ref_size: int = 256, ref_rf: int = 70) -> int:
    """The n_layers (at least 1) whose receptive field is closest to ref_rf * size / ref_size:
    the paper's 70 px patch at 256 px, scaled to images of side `size` (the module's table).
    Ties go to the smaller patch."""
    target = ref_rf * size / ref_size
    n = 1
    while receptive_field(n + 1) - target < target - receptive_field(n):
        n += 1
    return n


class PatchDiscriminator(nn.Module):
    """x (B, in_ch, H, W) -> logits (B, 1, h, w).

    C64-C128-C256-C512 for n_layers=3: 4x4 convs of width * 2^i channels (capped at 8 * width),
    Conv-Norm-LeakyReLU(0.2), stride 2 but the last, no norm on the first; then a 4x4 conv to
    one channel. Each conv pads 1 px, so a side shrinks as floor((side - 2) / stride) + 1.
    `spectral_norm` wraps every conv (Miyato et al. 2018); it does not remove the norm layers,
    pass norm="none" for SN alone. With norm="batch" one logit depends on the whole batch in
    training: judge real and fake batches in separate calls.
    """

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        strides = _strides(n_layers)
        norm2d(norm, 1)  # an unknown name fails here, before any layer is built
        self.n_layers = n_layers
        self.receptive_field = receptive_field(n_layers)
        chs = [in_ch] + [width * min(2 ** i, 8) for i in range(n_layers + 1)] + [1]
        layers: list[nn.Module] = []
        for i, s in enumerate(strides):
            last = i == len(strides) - 1
            normed = 0 < i and not last and norm != "none"
            conv = nn.Conv2d(chs[i], chs[i + 1], KERNEL, s, 1, bias=not normed)
            layers.append(sn(_init(conv), spectral_norm))  # init before sn: see dcgan._init
            if not last:
                layers += [_init(norm2d(norm if normed else "none", chs[i + 1])), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)  # (B, 1, h, w): unnormalised, one per patch
