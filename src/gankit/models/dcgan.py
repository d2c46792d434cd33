"""DCGAN generator and discriminator (Radford et al. 2016) for 28 px images and powers of two
from 32 to 256.

One code path serves every resolution: G starts from a `start_size(res)` square map (7 for 28,
4 for the others) and doubles it with stride-2 transposed convolutions; D halves its input with
stride-2 convolutions back down to that size. Channels double per coarser scale up to 8x the
finest scale's (the paper's 64 px nets: 1024 at 4 px, 128 at 32 px), or follow model.cbase /
model.cmax (`base.side_widths`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.models.base import ConditionalBatchNorm2d, DHead, Discriminator, block, side_widths, sn, start_size
from gankit.tasks.generate.config import ModelConfig

CAP = 8  # channels at a scale <= CAP x the finest scale's (DCGAN's 64 px nets: 8w at 4 px, w at 32)


def _init(m: nn.Module) -> nn.Module:
    """DCGAN init, in place: conv weights ~ N(0, 0.02), BN scales ~ N(1, 0.02), biases 0.

    Applied before `sn` wraps a conv, so the power iteration starts from the final weight.
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:  # conditional BN keeps its own 1/0 embeddings
        nn.init.normal_(m.weight, 1.0, 0.02)
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)
    return m


class DCGANGenerator(nn.Module):
    """z (B, in_dim) -> x (B, C, H, W) in [-1, 1]: project to an s x s map, then upsample x2
    with ConvTranspose2d(4, 2, 1) + BN + ReLU; tanh out. BN is class-conditional when
    `cfg.conditional` and there are classes, so G is called as G(z, y)."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        s, n_up = start_size(out_shape, "dcgan")
        self.in_dim = cfg.z_dim + cfg.info_cat + cfg.info_cont
        self.out_shape = tuple(out_shape)
        k = n_classes if cfg.conditional else 0
        # g_width at the finest hidden scale, doubling per coarser one: 28 -> (2w, w); 64 -> (8w, 4w, 2w, w)
        chs = side_widths([s * 2 ** i for i in range(n_up)], cfg.g_width, CAP, cfg.cbase, cfg.cmax)
        # A k x k transposed conv on a 1x1 input is a linear map z -> (chs[0], s, s).
        convs = [nn.ConvTranspose2d(self.in_dim, chs[0], s, 1, 0, bias=False)]
        convs += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in zip(chs[:-1], chs[1:])]
        self.convs = nn.ModuleList(_init(c) for c in convs)  # BN follows, so no bias
        self.bns = nn.ModuleList(ConditionalBatchNorm2d(c, k) for c in chs)
        for bn in self.bns:
            _init(bn.bn)
        self.out = _init(nn.ConvTranspose2d(chs[-1], out_shape[0], 4, 2, 1))

    def ordered_blocks(self) -> list[nn.Module]:
        """One block per scale, coarsest first: its transposed conv and BN; the output conv last."""
        return [block(c, bn) for c, bn in zip(self.convs, self.bns)] + [self.out]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = z[:, :, None, None]  # (B, in_dim, 1, 1)
        for conv, bn in zip(self.convs, self.bns):
            h = torch.relu(bn(conv(h), y))  # (B, ch, s, s) -> ... -> (B, g_width, H/2, W/2)
        return torch.tanh(self.out(h))  # (B, C, H, W)


class DCGANDiscriminator(Discriminator):
    """x (B, C, H, W) -> logits (B,): Conv2d(4, 2, 1) + LeakyReLU(0.2) down to an s x s map,
    BN after every conv but the first (or spectral norm on every conv instead of BN), flatten."""

    block_starts = (nn.Conv2d,)  # a block: one stride-2 conv with its BN and activation, finest first

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        s, n_down = start_size(in_shape, "dcgan")
        use_bn = cfg.d_batchnorm and not cfg.spectral_norm  # SN replaces BN, as in Miyato et al.'s SN-DCGAN
        sides = [in_shape[1] >> i for i in range(1, n_down + 1)]  # each conv's output side: H/2 ... s
        chs = [in_shape[0]] + side_widths(sides[::-1], cfg.d_width, CAP, cfg.cbase, cfg.cmax)[::-1]  # C, w, 2w, ...
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chs[:-1], chs[1:])):
            bn = use_bn and i > 0  # Radford et al.: no BN on D's input layer
            layers.append(sn(_init(nn.Conv2d(a, b, 4, 2, 1, bias=not bn)), cfg.spectral_norm))
            if bn:
                layers.append(_init(nn.BatchNorm2d(b)))
            layers.append(nn.LeakyReLU(cfg.leak))
        layers.append(nn.Flatten())  # (B, chs[-1] * s * s)
        self.body = nn.Sequential(*layers)
        self.feat_dim = chs[-1] * s * s
        self.heads = DHead(self.feat_dim, cfg.d_head, n_classes,
                           info_dim=cfg.info_cat + cfg.info_cont, spectral_norm=cfg.spectral_norm)
