"""The super-resolution networks: SRResNet, SRGAN's generator (Ledig et al. 2017) with EDSR's
residual blocks (Lim et al. 2017), and SRGAN's VGG-style discriminator.

    G(x) -> y          x: LR (B, C, h, w) in [-1, 1]; y: HR (B, C, scale*h, scale*w), about
                       [-1, 1] but not clamped (no tanh: clamp when quantising to uint8)
    D(x) -> logits     x: HR (B, C, H, W), any H, W; logits: (B,), unnormalised
    D.features(x)      [(B, c_i, H_i, W_i), ...]: every conv block's output, for feature matching
    D.head(h) -> logits  h: the last of those maps; D(x) == D.head(D.features(x)[-1])

G, first to last (scale 4, width 64, 16 blocks: 1,545,222 parameters at C = 3):
    head   9x9 conv C -> width, PReLU                   (SRGAN's k9n64s1; EDSR uses 3x3)
    body   n_blocks x [conv3x3-ReLU-conv3x3, times res_scale, + input]: no BatchNorm (EDSR:
           BN removes the images' range flexibility and costs memory), then a conv3x3 and a skip
           around the whole body from the head's output
    up     log2(scale) x [conv3x3 width -> 4 width, PixelShuffle(2), PReLU]; scale 3 is one
           [conv3x3 width -> 9 width, PixelShuffle(3), PReLU]
    tail   9x9 conv width -> C                          (SRGAN's k9n3s1)
    skip   + bicubic(x): the net learns only the residual over a bicubic upscale (as VDSR), which
           converges much faster on small budgets; `skip=False` gives the paper's SRResNet

Choices, and why:
  - res_scale 0.1 (EDSR's value for its wide net; ESRGAN uses 0.2): each block starts as nearly
    the identity, so a deep BN-free stack trains stably at lr 1e-4..2e-4 without warm-up. EDSR's
    64-wide baseline uses 1.0; pass res_scale=1.0 for it.
  - the sub-pixel convs get ICNR init (Aitken et al. 2017): the r*r output channels of a pixel
    group share one kernel, so at init PixelShuffle is nearest upsampling of one conv and makes
    no checkerboard artefacts.
  - with the skip, the tail conv starts at TAIL_GAIN (0.01) times torch's default init: the
    untrained G is bicubic upscaling plus a residual of the order of 1e-3, while every layer
    still gets a gradient (a zero tail would freeze the rest for the first step).
  - torch's bicubic (a = -0.75, differentiable, on any device) in the skip; the metrics'
    classical baseline is PIL's (a = -0.5, MATLAB's kernel): the skip is learned around, the
    baseline is the literature's.

D (SRGAN): conv3x3 blocks k3n64s1, k3n64s2, k3n128s1, k3n128s2, ... (channels width * 2^i),
LeakyReLU(0.2), BatchNorm after every conv but the first (SRGAN, ESRGAN), then global average
pooling (SRGAN flattens a 6x6 map of 96 px crops; pooling accepts any size) and a dense head
16*width -> LeakyReLU -> 1. `size` (the HR training crop) picks the number of stride-2 pairs:
SRGAN's 4 at 96 px, fewer on small crops so the last map stays at least 3 px (3 at 24..47 px, 2
at 12..23). At width 64 and size 96: 5,213,569 parameters at C = 3. norm="none" drops BatchNorm:
for small batches, relativistic losses that mix real and fake logits, or gradient penalties.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.unet import norm2d

SCALES = (2, 3, 4, 8)
RES_SCALE = 0.1  # EDSR's residual scaling
TAIL_GAIN = 0.01  # the tail's init, relative to torch's default, when G has the bicubic skip


def _stages(scale: int) -> list[int]:
    """PixelShuffle factors, first to last: [3] for scale 3, else log2(scale) twos."""
    if scale not in SCALES:
        raise GankitError(f"super-resolution scale must be one of {', '.join(map(str, SCALES))}; got {scale!r}")
    return [3] if scale == 3 else [2] * int(math.log2(scale))


def _icnr_(conv: nn.Conv2d, r: int) -> None:
    """ICNR init, in place, of a conv that feeds PixelShuffle(r): PixelShuffle sends channel
    c*r*r + k to sub-pixel k of channel c, so repeating each of the c kernels r*r times makes the
    shuffled output nearest-upsampled."""
    cout, cin, kh, kw = conv.weight.shape
    sub = nn.Conv2d(cin, cout // (r * r), (kh, kw))  # torch's default init, at the fan of `conv`
    with torch.no_grad():
        conv.weight.copy_(sub.weight.repeat_interleave(r * r, dim=0))
        conv.bias.copy_(sub.bias.repeat_interleave(r * r))


class ResBlock(nn.Module):
    """(B, w, h, w') -> same: x + res_scale * conv3x3(ReLU(conv3x3(x))), no BatchNorm (EDSR)."""

    def __init__(self, width: int, res_scale: float = RES_SCALE):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class SRResNet(nn.Module):
    """LR x (B, channels, h, w) in [-1, 1] -> HR y (B, channels, scale*h, scale*w), unclamped.

    The module's docstring has the layers and the choices. Fully convolutional: any h, w.
    """

    def __init__(self, channels: int = 3, scale: int = 4, width: int = 64, n_blocks: int = 16,
                 res_scale: float = RES_SCALE, skip: bool = True):
        super().__init__()
        stages = _stages(scale)
        self.scale, self.skip = scale, skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU())
        self.blocks = nn.Sequential(*(ResBlock(width, res_scale) for _ in range(n_blocks)))
        self.body_out = nn.Conv2d(width, width, 3, 1, 1)
        up: list[nn.Module] = []
        for r in stages:
            conv = nn.Conv2d(width, width * r * r, 3, 1, 1)
            _icnr_(conv, r)
            up += [conv, nn.PixelShuffle(r), nn.PReLU()]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)
        if skip:
            with torch.no_grad():
                self.tail.weight.mul_(TAIL_GAIN)
                self.tail.bias.mul_(TAIL_GAIN)

    def forward(self, x: Tensor) -> Tensor:
        f = self.head(x)  # (B, width, h, w)
        h = self.body_out(self.blocks(f)) + f  # (B, width, h, w): the global skip over the body
        y = self.tail(self.up(h))  # (B, C, scale*h, scale*w)
        if self.skip:
            size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
            y = y + F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return y


def down_pairs(size: int) -> int:
    """Number of (stride-1, stride-2) conv pairs in D for HR crops of side `size`: SRGAN's 4,
    or fewer so that the last map (side ceil(size / 2^n)) stays at least 3 px; at least 1."""
    if size < 1:
        raise GankitError(f"the discriminator's image size must be positive; got {size}")
    n = 1
    while n < 4 and size / 2 ** (n + 1) >= 3:
        n += 1
    return n


class SRDiscriminator(nn.Module):
    """HR x (B, channels, H, W) in [-1, 1] -> logits (B,): SRGAN's D, with global average pooling.

    Blocks, first to last: for i in range(down_pairs(size)), conv3x3 stride 1 then conv3x3
    stride 2, both width * 2^i channels; each conv is followed by BatchNorm (not the first conv,
    as SRGAN; none with norm="none") and LeakyReLU(0.2). Then the mean over H, W, a dense layer
    to 16 * width (SRGAN's 1024), LeakyReLU(0.2) and a dense layer to one logit. With
    norm="batch" a logit depends on the whole batch in training: judge reals and fakes in
    separate calls (`mixes_batch` says so, as for the other discriminators). Unlike
    `gankit.models.base.Discriminator`, `features` returns the list of maps, not one (B, F)
    vector, and there is no label input.
    """

    def __init__(self, channels: int = 3, width: int = 64, size: int = 96, norm: str = "batch"):
        super().__init__()
        norm2d(norm, 1)  # an unknown name fails here, before any layer is built
        self.n_pairs = down_pairs(size)
        blocks: list[nn.Module] = []
        cin = channels
        for i in range(self.n_pairs):
            c = width * 2 ** i
            for stride in (1, 2):
                normed = bool(blocks) and norm != "none"
                blocks.append(nn.Sequential(nn.Conv2d(cin, c, 3, stride, 1, bias=not normed),
                                            norm2d(norm if normed else "none", c), nn.LeakyReLU(0.2)))
                cin = c
        self.blocks = nn.ModuleList(blocks)
        self.feat_dim = cin
        self.dense = nn.Sequential(nn.Linear(cin, 16 * width), nn.LeakyReLU(0.2), nn.Linear(16 * width, 1))

    @property
    def mixes_batch(self) -> bool:
        """True when an example's logit depends on the rest of its batch (BatchNorm)."""
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    def features(self, x: Tensor) -> list[Tensor]:
        """Every conv block's output (after its LeakyReLU), first to last: 2 * n_pairs maps, the
        i-th pair's at width * 2^i channels and side ceil(H / 2^(i+1)) after its stride-2 conv.
        The last one is what the head pools."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def head(self, h: Tensor) -> Tensor:
        """The last feature map (B, feat_dim, H', W') -> logits (B,): pooled, then dense. Lets a
        G update reuse the maps it already computed for feature matching."""
        return self.dense(h.mean((2, 3))).squeeze(1)  # mean over H', W': (B, feat_dim) -> (B,)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)[-1])  # (B,)
