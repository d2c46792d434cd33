"""Pieces every architecture shares: the discriminator interface and its heads, conditional
batch norm, and optional spectral normalisation.

Interfaces (all architectures follow them):

    G(z, y=None) -> x          z: (B, G.in_dim) float; y: (B,) int64 class labels or None;
                               x: (B, *data_shape), in [-1, 1] when the output is tanh
    D(x, y=None) -> logits     (B,) float, one unnormalised score per example
    D.features(x) -> h         (B, D.feat_dim): the body, shared by every head
    D.head(h, y) -> logits     the adversarial head (plain linear, or linear + projection)
    D.aux(h) -> a              (B, D.aux_dim): auxiliary head (ACGAN class logits, InfoGAN codes);
                               only when D.aux_dim > 0
    net.ordered_blocks()       the network's blocks in forward order (D: input side, the highest
                               resolution, first; G: latent side first), each an nn.Module over
                               the network's own parameters: what train.freeze_d / freeze_g count
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from gankit.errors import GankitError

# The square sides each convolutional arch builds. 28 is built natively (a 7 x 7 start doubled
# twice); the others double a 4 x 4 start. dcgan stops at 256: its plain conv stacks, with no
# residual path, are not what anyone trains beyond that.
POW2 = tuple(2 ** k for k in range(5, 11))  # 32 ... 1024
RESOLUTIONS = {"dcgan": (28, 32, 64, 128, 256), "resnet": (28,) + POW2, "r3gan": (28,) + POW2,
               "stylegan2": (28,) + POW2}


def describe_sides(arch: str) -> str:
    """The sides `arch` builds, in words: '28 or a power of two from 32 to 1024'."""
    sides = RESOLUTIONS[arch]
    if sides[1:] == POW2[:len(sides) - 1]:
        return f"28 or a power of two from 32 to {sides[-1]}"
    return ", ".join(map(str, sides[:-1])) + f" or {sides[-1]}"


def nearest_side(arch: str, side: int) -> int:
    """The side `arch` builds nearest to `side` (the larger one on a tie)."""
    return min(RESOLUTIONS[arch], key=lambda r: (abs(r - side), -r))


def start_size(shape: tuple[int, int, int], arch: str) -> tuple[int, int]:
    """(side of the coarsest map, number of x2 steps from it to the image) for (C, H, W) images:
    7 for 28 px (7 -> 14 -> 28), else 4 (4 -> 8 -> ... -> H)."""
    _, h, w = shape
    if h != w or h not in RESOLUTIONS[arch]:
        raise GankitError(f"model.arch {arch!r} builds square images of side {describe_sides(arch)}; "
                          f"the data is {h}x{w} (set data.resolution)")
    s = 7 if h == 28 else 4
    return s, int(math.log2(h // s))


def side_widths(sides: list[int], width: int, cap: int, cbase: int | None = None,
                cmax: int | None = None) -> list[int]:
    """Channels of the maps at `sides` (coarse to fine, each twice the last).

    cbase set: min(cbase // side, cmax), StyleGAN2's rule (channel_base / channel_max: 32768 or
    16384 and 512), which R3GAN's FFHQ widths also follow (24576 and 768: 768 down to 64 px, then
    halving); cmax null: no cap. Otherwise `width` at the finest side, doubling per coarser one,
    at most cap x width (the small-image rule each arch had before)."""
    if cbase is None:
        return [width * min(sides[-1] // s, cap) for s in sides]
    out = [cbase // s if cmax is None else min(cbase // s, cmax) for s in sides]
    if min(out) < 1:
        raise GankitError(f"model.cbase = {cbase} leaves no channels at {sides[-1]} px (cbase // side = 0); "
                          f"set model.cbase >= {sides[-1]}")
    return out


def sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) via torch's parametrisation, when enabled."""
    return parametrizations.spectral_norm(module) if enabled else module


def block(*parts: nn.Module | nn.Parameter | None) -> nn.Module:
    """Modules and loose parameters (a learned constant) as one block for `ordered_blocks`: a
    ModuleList over the same objects, not copies, so freezing the block freezes the network's
    own parameters. None parts (an absent class embedding) are left out."""
    mods = [p for p in parts if isinstance(p, nn.Module)]
    loose = [p for p in parts if isinstance(p, nn.Parameter)]
    return nn.ModuleList(mods + ([nn.ParameterList(loose)] if loose else []))


def split_blocks(layers: nn.Sequential, starts: tuple[type, ...], lead: bool = True) -> list[nn.Module]:
    """A sequential body cut into blocks, in order: a block begins at each layer of a type in
    `starts`. Layers before the first such layer (a fromRGB conv) join it with `lead`, else they
    are a block of their own; layers after the last (an activation, a pooling) join the last."""
    out: list[list[nn.Module]] = [[]]
    for layer in layers:
        if isinstance(layer, starts) and out[-1] and (not lead or any(isinstance(m, starts) for m in out[-1])):
            out.append([])
        out[-1].append(layer)
    return [nn.ModuleList(b) for b in out if b]


class DHead(nn.Module):
    """The discriminator's heads over features h (B, F).

    plain:       logit = w^T h + b
    projection:  logit = w^T h + b + embed(y)^T h            (Miyato & Koyama 2018)
    acgan:       logit = w^T h + b, and aux(h) = class logits (Odena et al. 2017)
    InfoGAN codes add `info_dim` outputs to aux(h) (Chen et al. 2016).
    """

    def __init__(self, feat_dim: int, kind: str = "plain", n_classes: int = 0, info_dim: int = 0,
                 spectral_norm: bool = False):
        super().__init__()
        if kind in ("projection", "acgan") and n_classes < 1:
            raise ValueError(f"d_head {kind!r} needs labelled data")  # config validation catches this first
        self.kind = kind
        self.linear = sn(nn.Linear(feat_dim, 1), spectral_norm)
        self.embed = sn(nn.Embedding(n_classes, feat_dim), spectral_norm) if kind == "projection" else None
        self.aux_dim = (n_classes if kind == "acgan" else 0) + info_dim
        self.aux_linear = sn(nn.Linear(feat_dim, self.aux_dim), spectral_norm) if self.aux_dim else None

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("projection discriminator called without labels")
            out = out + (self.embed(y) * h).sum(1)
        return out

    def aux(self, h: Tensor) -> Tensor:
        return self.aux_linear(h)  # (B, aux_dim)


class Dropout(nn.Module):
    """Inverted dropout, as nn.Dropout: in training, zero each element with probability p and
    scale the rest by 1/(1-p). Elsewhere than on CPU it is torch's fused dropout. On CPU, where
    torch draws random numbers one element at a time on one thread, the mask comes from 16
    random bits per element (one 64-bit draw covers four elements), which is ~4x cheaper than
    `rand_like` and ~6x cheaper than the Bernoulli sampler nn.Dropout uses (dropout was 17% of
    a seed-mlp CPU step with that sampler). So p is rounded to a multiple of 1/65536
    (0.3 -> 0.300003) and the scale is 1/(1 - that). No parameters: checkpoints are the same
    either way."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        levels = round(p * 65536)  # int16 values below -32768 + levels are dropped
        self._threshold = -32768 + levels
        self._scale = 1.0 / (1.0 - levels / 65536)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)  # 64 random bits each
        keep = bits.view(torch.int16)[:n].view(x.shape) >= self._threshold  # P(keep) = 1 - p
        # As uint8, not bool: a product with a uint8 tensor is vectorised (10x faster than with
        # a bool tensor or torch.where here), forward and backward.
        return x * keep.view(torch.uint8) * self._scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Discriminator(nn.Module):
    """Base class: subclasses set `self.body` (x -> (B, F) features) and `self.heads` (a DHead)."""

    body: nn.Module
    heads: DHead
    block_starts: tuple[type, ...] = ()  # the body's layer types that begin a block (`ordered_blocks`)

    def ordered_blocks(self) -> list[nn.Module]:
        """The body's blocks, input side first (Mo et al. 2020 freeze these, from the first); the
        heads are never a block, so a fully frozen body still trains its head. [] when the arch
        defines no blocks."""
        return split_blocks(self.body, self.block_starts) if self.block_starts else []

    @property
    def mixes_batch(self) -> bool:
        """True when an example's output depends on the rest of its batch (BatchNorm in the body):
        then real and fake batches must go through D separately."""
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    @property
    def aux_dim(self) -> int:
        return self.heads.aux_dim

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        return self.heads(h, y)

    def aux(self, h: Tensor) -> Tensor:
        return self.heads.aux(h)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.heads(self.features(x), y)

    def judge(self, xr: Tensor, xf: Tensor, y: Tensor | None = None, aux_real: bool = False,
              aux_fake: bool = False) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Everything a D update asks of D, in one call: (real logits, fake logits, aux outputs of
        the reals and of the fakes when asked for, else None). One call is one forward pass for
        DistributedDataParallel, which reduces gradients per forward-backward pair."""
        if self.mixes_batch:  # BatchNorm: real and fake batches normalised on their own
            h_r, h_f = self.features(xr), self.features(xf)  # (B, F)
        else:  # examples independent: one forward over both, fewer and larger matrix products
            h_r, h_f = self.features(torch.cat([xr, xf])).chunk(2)
        return (self.head(h_r, y), self.head(h_f, y), self.aux(h_r) if aux_real else None,
                self.aux(h_f) if aux_fake else None)


class Judge(nn.Module):
    """`D.judge` as a module's forward, so that DistributedDataParallel can wrap it (DDP hooks
    `forward` only). Holds D itself: the same parameters, no copy."""

    def __init__(self, D: Discriminator):
        super().__init__()
        self.d = D

    def forward(self, xr: Tensor, xf: Tensor, y: Tensor | None = None, aux_real: bool = False,
                aux_fake: bool = False):
        return self.d.judge(xr, xf, y, aux_real, aux_fake)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose scale and shift are looked up per class (de Vries et al. 2017);
    without labels (y=None) or classes it is a plain affine BatchNorm2d."""

    def __init__(self, channels: int, n_classes: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.bn = nn.BatchNorm2d(channels, affine=n_classes == 0)
        if n_classes:
            self.gamma = nn.Embedding(n_classes, channels)
            self.beta = nn.Embedding(n_classes, channels)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.bn(x)
        if self.n_classes:
            if y is None:
                raise ValueError("conditional batch norm called without labels")
            out = out * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]
        return out


def one_hot(y: Tensor, n_classes: int) -> Tensor:
    """(B,) int labels -> (B, n_classes) float one-hot, by comparison: no host sync (F.one_hot
    checks the labels' range on the host), so it can run inside a CUDA graph."""
    return (y[:, None] == torch.arange(n_classes, device=y.device)).to(torch.get_default_dtype())
