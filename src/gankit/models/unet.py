"""The pix2pix U-Net generator (Isola et al. 2017), and the pieces the image-to-image networks
share: the norm layer by name and reflection padding to a multiple of a network's stride.

    G(x) -> y      x: (B, in_ch, H, W) in [-1, 1]; y: (B, out_ch, H, W) in [-1, 1] (tanh)

There is no z: as in the paper, dropout in the decoder is the generator's only noise.

Depth (the number of stride-2 steps) follows the image size given at construction: by default
ceil(log2(min(H, W))), so the bottleneck is 1 x 1 on a square image and sees all of it (8 at
256 px, as in the paper; 6 at 64; 5 at 32 and at 28). A side that is not a multiple of
2^depth (28 with depth 5) is reflection-padded up to the next multiple (28 -> 32: 2 px each
side) and the output is cropped back to H x W, so every output pixel stays aligned with its
input pixel. Padding is worked out from each input's shape, so any size whose padding is
smaller than the image itself works with the same weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.dcgan import _init  # pix2pix's init is DCGAN's: N(0, 0.02) weights

NORMS = ("batch", "instance", "none")


def norm2d(kind: str, ch: int) -> nn.Module:
    """The normalisation after a conv, by name: "batch" | "instance" | "none".

    Instance norm (Ulyanov et al. 2016) normalises each image on its own, in training and in
    evaluation (no running statistics), with a learned per-channel scale and shift. The convs it
    follows have no bias: the mean subtraction would cancel it (pytorch-CycleGAN-and-pix2pix keeps
    the bias and drops the scale and shift instead, so counts differ by one C per such conv).
    """
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {kind!r}")


def _pads(side: int, multiple: int) -> tuple[int, int]:
    """(before, after): reflection padding that takes `side` up to a multiple of `multiple`."""
    total = -side % multiple
    before, after = total // 2, total - total // 2
    if after >= side:  # reflection cannot reach further than the image itself (a user's image size)
        raise GankitError(f"a side of {side} px cannot be reflection-padded to a multiple of "
                          f"{multiple}; use larger images or fewer down-sampling steps")
    return before, after


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """x (B, C, H, W) reflection-padded to sides that are multiples of `multiple`, and the
    (top, bottom, left, right) padding that `crop` removes. The padding comes from the shape
    (Python ints), so nothing is read from the device."""
    (top, bottom), (left, right) = _pads(x.shape[-2], multiple), _pads(x.shape[-1], multiple)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), mode="reflect")
    return x, (top, bottom, left, right)


def crop(y: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """Undo `pad_to_multiple` on an output of the padded size: (B, C, H', W') -> (B, C, H, W)."""
    top, bottom, left, right = pads
    return y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]


def default_depth(size: int | tuple[int, int]) -> int:
    """ceil(log2(shorter side)): the most stride-2 steps, counting the padding, that leave a
    bottleneck of at least 1 px: 8 at 256, 6 at 64, 5 at 32 and at 28 (padded to 32)."""
    h, w = (size, size) if isinstance(size, int) else size
    if min(h, w) < 2:
        raise ValueError(f"the U-Net needs images of at least 2 x 2 px, got {h} x {w}")
    return math.ceil(math.log2(min(h, w)))


class UNetGenerator(nn.Module):
    """x (B, in_ch, H, W) -> y (B, out_ch, H, W): the pix2pix U-Net.

    Encoder: `depth` 4x4 stride-2 convs, Conv-Norm-LeakyReLU(0.2), channels width * 2^i capped
    at width * max_mult (C64-C128-C256-C512-C512-...). No norm on the first (as the paper) nor
    on the innermost: that map is 1 x 1, where instance norm, or batch norm on a batch of one,
    would zero it (the authors' code drops it there too).
    Decoder: 4x4 stride-2 transposed convs, ConvT-Norm-Dropout-ReLU, each output concatenated
    with the encoder map of the same resolution (the skip connections); dropout in the first
    three decoder blocks (the innermost); the last transposed conv maps to out_ch, then tanh.

    `test_dropout` (default False): keep dropout on in evaluation too. pix2pix does, to make
    its outputs stochastic; off here, so that inference is deterministic. Not saved in the
    state dict: set it on the built model.
    """

    def __init__(self, in_ch: int, out_ch: int, size: int | tuple[int, int], width: int = 64,
                 depth: int | None = None, norm: str = "batch", dropout: float = 0.5,
                 max_mult: int = 8):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.depth = default_depth((h, w)) if depth is None else depth
        if self.depth < 1:
            raise ValueError(f"U-Net depth must be at least 1, got {self.depth}")
        for side in (h, w):  # a depth the size cannot take fails now, not at the first batch
            _pads(side, 2 ** self.depth)
        norm2d(norm, 1)  # an unknown name fails here, before any layer is built
        self.dropout, self.n_dropout = dropout, min(3, self.depth - 1)
        self.test_dropout = False
        chs = [width * min(2 ** i, max_mult) for i in range(self.depth)]  # encoder outputs
        self.down = nn.ModuleList()
        for i, c in enumerate(chs):
            normed = 0 < i < self.depth - 1
            self.down.append(nn.Sequential(
                nn.Conv2d(chs[i - 1] if i else in_ch, c, 4, 2, 1, bias=not normed or norm == "none"),
                norm2d(norm if normed else "none", c),
                nn.LeakyReLU(0.2),
            ))
        # innermost first: up[k] takes the level-i map (i = depth-1-k) up to level i-1; from the
        # second on, its input is the previous output concatenated with its skip (2 * chs[i])
        self.up = nn.ModuleList()
        for i in reversed(range(1, self.depth)):
            cin = chs[i] * (1 if i == self.depth - 1 else 2)
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(cin, chs[i - 1], 4, 2, 1, bias=norm == "none"),
                norm2d(norm, chs[i - 1]),
            ))
        self.out = nn.ConvTranspose2d(chs[0] * (2 if self.depth > 1 else 1), out_ch, 4, 2, 1)
        self.apply(_init)

    def forward(self, x: Tensor) -> Tensor:
        x, pads = pad_to_multiple(x, 2 ** self.depth)  # (B, in_ch, H', W'), H', W' multiples of 2^depth
        skips = []
        h = x
        for down in self.down:
            h = down(h)  # (B, chs[i], H' / 2^(i+1), W' / 2^(i+1))
            skips.append(h)
        h = skips.pop()  # the bottleneck: (B, chs[-1], H' / 2^depth, W' / 2^depth)
        drop = self.training or self.test_dropout
        for k, up in enumerate(self.up):
            h = up(h)  # one level finer: (B, chs[i-1], ...)
            if k < self.n_dropout:
                h = F.dropout(h, self.dropout, training=drop)
            h = torch.cat([torch.relu(h), skips.pop()], 1)  # (B, 2 * chs[i-1], ...)
        return crop(torch.tanh(self.out(h)), pads)  # (B, out_ch, H, W)
