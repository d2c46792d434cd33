"""R3GAN generator and discriminator (Huang, Gokaslan, Kuleshov & Tompkin, NeurIPS 2024, "The
GAN is dead; long live the GAN! A Modern GAN Baseline"), for 28 px images and powers of two from 32 to 1024.

Both networks are stages of residual blocks, one stage per scale, with no normalisation layer
anywhere (no BatchNorm, no spectral norm): the paper's loss (train.loss=rpgan with reg.r1 and
reg.r2) keeps training stable without them. A block is an inverted bottleneck,

    x + conv1x1(lrelu(grouped conv3x3(lrelu(conv1x1(x)))))    C -> E*C -> E*C -> C channels

with E = model.expansion and model.group channels per group of the 3x3 conv. Fix-up
initialisation (as the paper): each block's last conv starts at zero, so every block
starts as the identity, and the other two are He-initialised and scaled by L^(-1/4), L being
the network's number of blocks, so the variance of the residual stream does not grow with depth.

Scales: as in `base.start_size`, the coarsest map is s = 7 px for 28 px images (7 -> 14 -> 28)
and 4 px for the others (4 -> ... -> H): 28 px images are generated at their own size,
with no crop. Between stages, resampling is bilinear with the [1, 2, 1] filter (`up2`, `down2`),
and a 1x1 conv changes the channel count where the widths differ (the paper's transition layers;
at the coarser resolution of the two, where it is cheaper).

Widths (`stage_widths`): model.g_width / model.d_width at the finest scale, doubling per coarser
scale up to model.width_cap times that. width_cap 1 gives every stage one width, as in the
paper's CIFAR-10 and ImageNet-32 networks (768 and 1536 channels at 4, 8, 16 and 32 px). With
model.cbase, min(cbase // r, cmax) channels at an r x r stage instead (`base.side_widths`): the
paper's FFHQ nets are cbase 24576, cmax 768 (768 channels from 4 to 32 px, then 384, 192, 96 at
64, 128, 256 px), with 16 channels per group at every stage.

G: z -> the learned s x s basis -> stages -> 1x1 conv to the image channels (-> tanh when
model.g_out is tanh; the paper's output is linear, model.g_out none). D mirrors it: 1x1 conv from
the image -> stages -> a learned s x s basis (a depthwise s x s conv) -> features (B, F), the
coarsest width; the heads of `base.DHead` (plain, projection, acgan) follow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import DHead, Discriminator, block, side_widths, split_blocks, start_size
from gankit.tasks.generate.config import ModelConfig


def stage_widths(width: int, n_stages: int, cap: int) -> list[int]:
    """Channels of each stage, coarsest first: `width` at the finest, x2 per coarser stage, at
    most cap x width. stage_widths(16, 3, 8) == [64, 32, 16]; stage_widths(768, 4, 1) == [768] * 4."""
    return side_widths([2 ** i for i in range(n_stages)], width, cap)


def _widths(cfg: ModelConfig, width: int, s: int, n_stages: int) -> list[int]:
    """The stages' widths, coarsest first, by model.cbase / cmax when set, else `stage_widths`."""
    return side_widths([s * 2 ** i for i in range(n_stages)], width, cfg.width_cap, cfg.cbase, cfg.cmax)


def _up_last(x: Tensor) -> Tensor:
    """x2 along the last axis: out[2i] = x[i], out[2i+1] = (x[i] + x[i+1]) / 2, x[n] = x[n-1]."""
    nxt = torch.cat([x[..., 1:], x[..., -1:]], -1)  # right neighbour, edge repeated
    return torch.stack([x, (x + nxt) / 2], -1).flatten(-2)  # (..., n, 2) -> (..., 2n)


def _down_last(x: Tensor) -> Tensor:
    """/2 along the last axis (even length): out[j] = (x[2j-1] + 2 x[2j] + x[2j+1]) / 4, x[-1] = x[0]."""
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., n/2) each
    left = torch.cat([even[..., :1], odd[..., :-1]], -1)  # x[2j-1], edge repeated at j = 0
    return (left + 2 * even + odd) / 4


def up2(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zeros inserted between pixels, then the [1, 2, 1] / 2 filter
    per axis (gain 2 per axis keeps the mean), i.e. linear interpolation: out[2i] = x[i],
    out[2i+1] = (x[i] + x[i+1]) / 2. The last pixel's missing neighbour repeats the edge
    (upfirdn2d pads with zeros instead, which darkens the border). Slices, not a transposed conv:
    exact, cheap on CPU, and twice differentiable for R1/R2."""
    return _up_last(_up_last(x).transpose(-1, -2)).transpose(-1, -2)


def down2(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2), H and W even: the [1, 2, 1] / 4 low-pass per axis, then
    every other pixel: out[j] = (x[2j-1] + 2 x[2j] + x[2j+1]) / 4, with x[-1] = x[0] (the edge
    repeated, so a constant image stays constant; zero padding would dim the first row and column)."""
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"down2 needs even sides, got {tuple(x.shape[-2:])}")
    return _down_last(_down_last(x).transpose(-1, -2)).transpose(-1, -2)


def _he(conv: nn.Conv2d, leak: float | None, scale: float = 1.0) -> nn.Conv2d:
    """In place: weights ~ N(0, (scale * gain)^2 / fan_in), He init with the leaky-ReLU gain
    sqrt(2 / (1 + leak^2)) when a leaky ReLU follows (`leak`), gain 1 for a linear layer (None);
    fan_in counts one group's input channels. Bias 0."""
    if leak is None:
        nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
    else:
        nn.init.kaiming_normal_(conv.weight, a=leak, nonlinearity="leaky_relu")
    with torch.no_grad():
        conv.weight.mul_(scale)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def n_groups(hidden: int, group: int) -> int:
    """Groups of a block's 3x3 conv: hidden / group, or 1 (a dense conv) when hidden < group."""
    if hidden <= group:
        return 1
    if hidden % group:
        raise GankitError(f"model.group = {group} must divide the hidden width of r3gan's blocks, "
                          f"model.expansion x stage width = {hidden}; choose a group that divides it, "
                          "or widths that make it a multiple")
    return hidden // group


class ResBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + conv1x1(lrelu(gconv3x3(lrelu(conv1x1(x))))), the hidden width
    E * C. Fix-up init: the last conv is zero (the block starts as the identity); the first two
    are He-initialised and multiplied by `scale` (L^(-1/4) for a network of L blocks)."""

    def __init__(self, ch: int, expansion: int, group: int, leak: float, scale: float):
        super().__init__()
        hidden = ch * expansion
        self.leak = leak
        self.expand = _he(nn.Conv2d(ch, hidden, 1), leak, scale)
        self.conv = _he(nn.Conv2d(hidden, hidden, 3, padding=1, groups=n_groups(hidden, group)), leak, scale)
        self.project = nn.Conv2d(hidden, ch, 1)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.expand(x), self.leak)  # (B, E*C, H, W)
        h = F.leaky_relu(self.conv(h), self.leak)  # (B, E*C, H, W), E*C / group groups
        return x + self.project(h)  # (B, C, H, W)


def _stage(ch: int, cfg: ModelConfig, scale: float) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(ch, cfg.expansion, cfg.group, cfg.leak, scale) for _ in range(cfg.blocks)))


class R3GANGenerator(nn.Module):
    """z (B, in_dim) [+ y (B,)] -> x (B, C, H, W); in [-1, 1] when model.g_out is tanh.

    Input: the paper's learned basis, an (ch, s, s) parameter ~ N(0, 1) multiplied channel-wise by
    a linear map of z, so z sets how much of each learned s x s pattern the first map holds.
    Conditional runs (model.conditional with labelled data) concatenate a learned class embedding
    of z_dim values (~ N(0, 1) at init, as z) to z before that linear map, as the paper does, so
    G is called as G(z, y)."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        self.s, n_up = start_size(out_shape, "r3gan")
        self.in_dim = cfg.z_dim + cfg.info_cat + cfg.info_cont
        self.out_shape = tuple(out_shape)
        self.tanh = cfg.g_out == "tanh"
        self.widths = _widths(cfg, cfg.g_width, self.s, n_up + 1)  # s px, 2s px, ..., H px
        scale = (cfg.blocks * len(self.widths)) ** -0.25  # L^(-1/4), L = every block of G
        self.embed = nn.Embedding(n_classes, cfg.z_dim) if cfg.conditional and n_classes else None
        cond_dim = cfg.z_dim if self.embed is not None else 0
        self.linear = nn.Linear(self.in_dim + cond_dim, self.widths[0], bias=False)
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="linear")  # unit-variance inputs in, out
        self.basis = nn.Parameter(torch.randn(self.widths[0], self.s, self.s))
        self.stages = nn.ModuleList(_stage(w, cfg, scale) for w in self.widths)
        # transition i (into stage i + 1): 1x1 conv at the coarser scale where the width changes, then up2
        self.transitions = nn.ModuleList(
            _he(nn.Conv2d(a, b, 1), None) if a != b else nn.Identity()
            for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.out = _he(nn.Conv2d(self.widths[-1], out_shape[0], 1), None)

    def ordered_blocks(self) -> list[nn.Module]:
        """One block per stage, coarsest first: the input map (embedding, linear, basis) with the
        first stage, each transition with the stage it leads into, the output conv with the last."""
        n = len(self.stages)
        return [block(*((self.embed, self.linear, self.basis) if i == 0 else (self.transitions[i - 1],)),
                      self.stages[i], self.out if i == n - 1 else None) for i in range(n)]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("conditional generator called without labels")
            z = torch.cat([z, self.embed(y)], 1)  # (B, in_dim + z_dim)
        h = self.basis * self.linear(z)[:, :, None, None]  # (ch0, s, s) * (B, ch0, 1, 1) -> (B, ch0, s, s)
        for i, stage in enumerate(self.stages):
            if i:
                h = up2(self.transitions[i - 1](h))  # (B, ch_i, 2^i s, 2^i s)
            h = stage(h)
        x = self.out(h)  # (B, C, H, W)
        return torch.tanh(x) if self.tanh else x


class _Down(nn.Module):
    """`down2` as a layer of D's nn.Sequential body."""

    def forward(self, x: Tensor) -> Tensor:
        return down2(x)  # (B, C, H, W) -> (B, C, H/2, W/2)


class R3GANDiscriminator(Discriminator):
    """x (B, C, H, W) -> logits (B,). Features: the coarsest stage's map through a learned
    depthwise s x s conv (each channel weighs its own s x s positions, mirroring G's basis):
    (B, widths[0]). No normalisation, so real and fake batches share one forward (`judge`)."""


    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        if cfg.spectral_norm:  # the zero-initialised convs would have sigma = 0: W / sigma is undefined
            raise GankitError("model.spectral_norm: the r3gan arch has no normalisation layers (its R1 + R2 "
                              "penalties replace them); set model.spectral_norm=false")
        s, n_down = start_size(in_shape, "r3gan")
        self.widths = _widths(cfg, cfg.d_width, s, n_down + 1)  # s px (coarsest) ... H px
        scale = (cfg.blocks * len(self.widths)) ** -0.25  # L^(-1/4), L = every block of D
        fine_to_coarse = self.widths[::-1]
        layers: list[nn.Module] = [_he(nn.Conv2d(in_shape[0], fine_to_coarse[0], 1), None)]  # (B, w, H, W)
        for i, w in enumerate(fine_to_coarse):
            layers.append(_stage(w, cfg, scale))
            if i + 1 < len(fine_to_coarse):  # transition: down2, then 1x1 conv at the coarser scale
                nxt = fine_to_coarse[i + 1]
                layers += [_Down()] + ([_he(nn.Conv2d(w, nxt, 1), None)] if nxt != w else [])
        basis = nn.Conv2d(self.widths[0], self.widths[0], s, groups=self.widths[0], bias=False)
        layers += [_he(basis, None), nn.Flatten()]  # (B, ch0, s, s) -> (B, ch0, 1, 1) -> (B, ch0)
        self.body = nn.Sequential(*layers)
        self.feat_dim = self.widths[0]
        self.heads = DHead(self.feat_dim, cfg.d_head, n_classes, info_dim=cfg.info_cat + cfg.info_cont)
        if self.heads.embed is not None:
            # Projection embed(y)^T h: N(0, 1/F) instead of nn.Embedding's N(0, 1), so that features of
            # unit variance give a projection term of unit variance at any width (at 768 channels the
            # default makes it ~17x the linear term's, and R1/R2 start from its gradient).
            nn.init.normal_(self.heads.embed.weight, 0.0, self.feat_dim ** -0.5)

    def ordered_blocks(self) -> list[nn.Module]:
        """One block per stage, finest first: the first with fromRGB, each other with the
        down-sampling transition before it, the last with the depthwise basis conv."""
        return split_blocks(self.body, (_Down,), lead=False)
