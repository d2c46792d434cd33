"""SNGAN-style residual generator and discriminator (Miyato et al. 2018, the CIFAR ResNets),
with an optional SAGAN self-attention block (Zhang et al. 2019), for 28 px images and powers of
two from 32 to 1024.

G: Linear z -> (w, s, s), up-blocks to the image size, BN-ReLU-conv3x3-tanh.
D: an "optimized" first block, down-blocks to s x s, one block at s x s, ReLU, global sum pool.
s is 7 for 28 pixels and 4 for the others (`base.start_size`). Every block has the same width
(g_width in G, d_width in D), as in SNGAN's 32 px nets; with model.cbase a map of side r has
min(cbase // r, cmax) channels instead (`base.side_widths`), wider where the maps are small,
as BigGAN-style nets at 128 px and beyond are (a block's output map sets its width).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.models.base import ConditionalBatchNorm2d, DHead, Discriminator, block, side_widths, sn, start_size
from gankit.tasks.generate.config import ModelConfig


def _conv(cin: int, cout: int, k: int, gain: float = 1.0, spectral_norm: bool = False,
          bias: bool = True) -> nn.Module:
    """A same-padding k x k conv with SNGAN's init: Xavier uniform, gain sqrt(2) on the residual
    path's 3x3 convs (a ReLU follows) and 1 elsewhere. Initialised before `sn` wraps it."""
    conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=bias)
    nn.init.xavier_uniform_(conv.weight, gain)
    if bias:
        nn.init.zeros_(conv.bias)
    return sn(conv, spectral_norm)


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")  # (B, C, H, W) -> (B, C, 2H, 2W)


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * o, o = W_o(softmax(q^T k) v) over all H*W positions.

    gamma starts at 0, so the block starts as the identity and the net learns how much to use it.
    """

    def __init__(self, ch: int, spectral_norm: bool = False):
        super().__init__()
        ck, cv = max(ch // 8, 1), max(ch // 2, 1)
        self.q = sn(nn.Conv2d(ch, ck, 1, bias=False), spectral_norm)
        self.k = sn(nn.Conv2d(ch, ck, 1, bias=False), spectral_norm)
        self.v = sn(nn.Conv2d(ch, cv, 1, bias=False), spectral_norm)
        self.o = sn(nn.Conv2d(cv, ch, 1, bias=False), spectral_norm)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        q, k, v = self.q(x).flatten(2), self.k(x).flatten(2), self.v(x).flatten(2)  # (B, c, N), N = H*W
        # Written out rather than F.scaled_dot_product_attention: its fused CUDA kernels have no
        # double backward, which gradient penalties through D need. No 1/sqrt(c) scale, as in SAGAN.
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N): row i weighs positions j
        o = (v @ attn.transpose(1, 2)).view(B, -1, H, W)  # (B, ch/2, H, W): o_i = sum_j attn_ij v_j
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """(B, cin, s, s) -> (B, cout, 2s, 2s): BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + up-conv1x1(x)."""

    def __init__(self, cin: int, cout: int, n_classes: int = 0):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, n_classes)
        self.conv1 = _conv(cin, cout, 3, math.sqrt(2), bias=False)  # bn2 would cancel a bias
        self.bn2 = ConditionalBatchNorm2d(cout, n_classes)
        self.conv2 = _conv(cout, cout, 3, math.sqrt(2))
        self.skip = _conv(cin, cout, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x, y))))
        h = self.conv2(F.relu(self.bn2(h, y)))
        return h + self.skip(_up(x))


class DBlock(nn.Module):
    """(B, cin, s, s) -> (B, cout, s/2, s/2), or s x s when not `down`; no BN.

    first ("optimized" block): conv3x3-ReLU-conv3x3 straight on the image, no pre-activation.
    otherwise: ReLU-conv3x3-ReLU-conv3x3. Then avgpool when `down`. The shortcut is
    avgpool-conv1x1, equal to SNGAN's conv1x1-avgpool (both are linear and commute) but on a
    quarter of the pixels; identity when the shape does not change.
    """

    def __init__(self, cin: int, cout: int, spectral_norm: bool, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _conv(cin, cout, 3, math.sqrt(2), spectral_norm)
        self.conv2 = _conv(cout, cout, 3, math.sqrt(2), spectral_norm)
        self.skip = _conv(cin, cout, 1, 1.0, spectral_norm) if down or cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return h + self.skip(x)


class _SumPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sum((2, 3))  # (B, C, H, W) -> (B, C); a sum, not a mean, as in SNGAN


class ResNetGenerator(nn.Module):
    """z (B, in_dim) -> x (B, C, H, W) in [-1, 1]. Every BN is class-conditional when
    `cfg.conditional` and there are classes, so G is called as G(z, y)."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        self.s, n_up = start_size(out_shape, "resnet")
        self.in_dim = cfg.z_dim + cfg.info_cat + cfg.info_cont
        self.out_shape = tuple(out_shape)
        k = n_classes if cfg.conditional else 0
        ch = side_widths([self.s * 2 ** i for i in range(n_up + 1)], cfg.g_width, 1, cfg.cbase, cfg.cmax)  # s ... H px
        self.linear = nn.Linear(self.in_dim, ch[0] * self.s * self.s)
        nn.init.xavier_uniform_(self.linear.weight)
        self.blocks = nn.ModuleList(GBlock(a, b, k) for a, b in zip(ch[:-1], ch[1:]))
        # attention after the first up-block: on the 14x14 map for 28 pixels, else 8x8
        self.attn = SelfAttention(ch[1]) if cfg.attention else nn.Identity()
        self.bn = ConditionalBatchNorm2d(ch[-1], k)
        self.out = _conv(ch[-1], out_shape[0], 3)

    def ordered_blocks(self) -> list[nn.Module]:
        """The input linear map, each up-block (the first with its attention), then the output
        BN and conv."""
        ups = [block(b, self.attn) if i == 0 else b for i, b in enumerate(self.blocks)]
        return [self.linear, *ups, block(self.bn, self.out)]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.linear(z).view(z.shape[0], -1, self.s, self.s)  # (B, ch0, s, s)
        for i, up in enumerate(self.blocks):
            h = up(h, y)  # (B, w, 2s, 2s) ... (B, w, H, W)
            if i == 0:
                h = self.attn(h)
        return torch.tanh(self.out(F.relu(self.bn(h, y))))  # (B, C, H, W)


class ResNetDiscriminator(Discriminator):
    """x (B, C, H, W) -> logits (B,); features are the ReLU'd last map summed over H, W: (B, its width)."""

    block_starts = (DBlock,)  # a block: one residual block (the first with its attention), finest first

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        s, n_down = start_size(in_shape, "resnet")
        spec = cfg.spectral_norm
        # ch[i]: channels of block i's output, at side H / 2^(i+1); the last block stays at s
        ch = side_widths([s * 2 ** i for i in range(n_down)], cfg.d_width, 1, cfg.cbase, cfg.cmax)[::-1]
        layers: list[nn.Module] = [DBlock(in_shape[0], ch[0], spec, first=True)]  # (B, ch0, H/2, W/2)
        if cfg.attention:
            layers.append(SelfAttention(ch[0], spec))
        layers += [DBlock(a, b, spec) for a, b in zip(ch[:-1], ch[1:])]  # ... -> (B, ch[-1], s, s)
        layers += [DBlock(ch[-1], ch[-1], spec, down=False), nn.ReLU(), _SumPool()]  # (B, ch[-1])
        self.body = nn.Sequential(*layers)
        self.feat_dim = ch[-1]
        self.heads = DHead(self.feat_dim, cfg.d_head, n_classes,
                           info_dim=cfg.info_cat + cfg.info_cont, spectral_norm=spec)
