"""FBPConvNet's U-Net (Jin et al. 2017, "Deep convolutional neural network for inverse problems in
imaging"): the generator for reconstruction, where the input is already an image of the right
geometry (an FBP or a zero-filled inverse FFT) and the network only has to remove its artefacts.

    G(x) -> r      x: (B, in_ch, H, W); r: (B, out_ch, H, W), the correction (no tanh):
                   the estimate is x + r (the task adds it: `phases_common.estimate`)

Unlike the pix2pix U-Net (`gankit.models.unet`), every level, full resolution included, has two
3x3 convs (Conv-Norm-ReLU) before it is pooled and after its skip is concatenated back, so a
streak one pixel wide is seen at its own scale; down-sampling is 2x2 max-pooling, up-sampling a
3x3 stride-2 transposed conv (ConvT-Norm-ReLU); channels double per level (width, 2 width, ...);
there is no dropout (the output is a deterministic estimate). The last layer is a 1x1 conv,
zero-initialised, so an untrained network returns a zero correction: the estimate starts as the
classical reconstruction itself and training only has to learn what FBP gets wrong.

`levels` counts resolutions (the paper: 5 at 512 px; 4 here by default: 64 px -> 8 px at the
bottom). A side that is not a multiple of 2^(levels - 1) is reflection-padded up to one and the
output cropped back, as the pix2pix U-Net does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.models.unet import _pads, crop, norm2d, pad_to_multiple


def _double_conv(cin: int, cout: int, norm: str) -> nn.Sequential:
    """Two 3x3 Conv-Norm-ReLU, same size: (B, cin, H, W) -> (B, cout, H, W)."""
    bias = norm == "none"  # a norm's shift makes a conv bias redundant
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1, bias=bias), norm2d(norm, cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=bias), norm2d(norm, cout), nn.ReLU(),
    )


class FBPConvNet(nn.Module):
    """x (B, in_ch, H, W) -> the correction (B, out_ch, H, W): FBPConvNet's U-Net.

    Level i (0 = full resolution) has width * 2^i channels. Encoder: double conv at each level,
    max-pool between levels; the bottom level's double conv is the bottleneck. Decoder: from the
    bottom up, a transposed conv halves the channels and doubles the size, the encoder map of that
    level is concatenated (the skip), a double conv mixes them. Then a 1x1 conv to out_ch.
    """

    def __init__(self, in_ch: int, out_ch: int, size: int | tuple[int, int], width: int = 32,
                 levels: int = 4, norm: str = "batch"):
        super().__init__()
        if levels < 2:
            raise ValueError(f"FBPConvNet needs at least 2 levels, got {levels}")
        h, w = (size, size) if isinstance(size, int) else size
        self.depth = levels - 1  # pooling steps; inputs are padded to multiples of 2^depth
        for side in (h, w):  # a size the depth cannot take fails now, not at the first batch
            _pads(side, 2 ** self.depth)
        norm2d(norm, 1)  # an unknown name fails here, before any layer is built
        chs = [width * 2 ** i for i in range(levels)]
        self.down = nn.ModuleList(_double_conv(chs[i - 1] if i else in_ch, c, norm) for i, c in enumerate(chs))
        self.pool = nn.MaxPool2d(2)
        # up[k] takes level i = depth - k to level i - 1; merge[k] mixes it with that level's skip
        self.up = nn.ModuleList(nn.Sequential(
            nn.ConvTranspose2d(chs[i], chs[i - 1], 3, 2, 1, output_padding=1, bias=norm == "none"),
            norm2d(norm, chs[i - 1]), nn.ReLU()) for i in reversed(range(1, levels)))
        self.merge = nn.ModuleList(_double_conv(2 * chs[i - 1], chs[i - 1], norm) for i in reversed(range(1, levels)))
        self.out = nn.Conv2d(chs[0], out_ch, 1)
        nn.init.zeros_(self.out.weight)  # zero correction at init: the estimate starts as the input
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        x, pads = pad_to_multiple(x, 2 ** self.depth)  # (B, in_ch, H', W'), multiples of 2^depth
        skips = []
        h = x
        for i, down in enumerate(self.down):
            h = down(self.pool(h) if i else h)  # (B, width * 2^i, H' / 2^i, W' / 2^i)
            skips.append(h)
        h = skips.pop()  # the bottleneck: (B, width * 2^depth, H' / 2^depth, W' / 2^depth)
        for up, merge in zip(self.up, self.merge):
            h = merge(torch.cat([up(h), skips.pop()], 1))  # one level finer: (B, width * 2^(i-1), ...)
        return crop(self.out(h), pads)  # (B, out_ch, H, W)
