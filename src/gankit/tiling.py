"""Tiled inference for image-to-image networks on images too large to process in one call.

`tiled(fn, x, tile, overlap, scale)` cuts x into a grid of tiles, runs `fn` on each tile together
with `overlap` pixels of context on every side, and blends the outputs without seams. Along each
axis of length H (the same holds for W):

- the windows that `fn` sees have side ``tile + 2 * overlap`` and start at 0, tile, 2 tile, ...;
  the last one is shifted inward to end at H, so every window is full size. An axis shorter than
  a window is processed whole (one window of side H).
- neighbouring windows therefore share at least ``2 * overlap`` pixels. In that band each window's
  weight is 0 over the outer ``overlap // 2`` pixels (context only: the pixels that the window's
  edge disturbs), then rises linearly to 1; where two windows share exactly ``2 * overlap`` pixels
  the two ramps sum to 1. A window edge on the image border gets weight 1 up to the border.
- output = sum over windows of weight x fn(window) / sum of weights, computed in the output's
  coordinates (scale x the input's).

So for a purely local `fn` whose receptive field reaches at most ``overlap // 2`` input pixels
from each output pixel, the tiled output equals ``fn(x)`` up to float rounding; for a real
network it hides the small differences near window edges.

Cost: with n_h x n_w windows (n = ceil((H - 2 overlap) / tile) when H >= a window, else 1),
`fn` runs on n_h n_w inputs of (N, C, tile + 2 overlap, tile + 2 overlap), one at a time: about
(1 + 2 overlap / tile)^2 <= 4 times the work of one untiled call (tile >= 2 overlap), plus
O(N C_out scale^2 H W) for the blend. Memory: the output (N, C_out, scale H, scale W), allocated
once, plus one window's input, output and activations; the weights are kept as 1-D profiles
(the 2-D window weight and normaliser are outer products), never as a full-size map.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def tiled(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, scale: int = 1) -> Tensor:
    """fn applied to (N, C, H, W) float `x` tile by tile (see the module docstring); fn maps
    (N, C, h, w) to (N, C_out, scale h, scale w). Returns (N, C_out, scale H, scale W). Gradients
    flow if fn's do; call it under `torch.no_grad()` for inference."""
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"tiled: x must be a float (N, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}")
    if overlap < 0 or scale < 1 or tile < 1 or tile < 2 * overlap:
        # tile >= 2 overlap keeps every pixel in at most two windows per axis (<= 4x the work)
        raise ValueError(f"tiled: need tile >= max(1, 2 * overlap), overlap >= 0 and scale >= 1; got "
                         f"tile={tile}, overlap={overlap}, scale={scale}")
    n, _, h, w = x.shape
    starts_y, size_y = _starts(h, tile + 2 * overlap, tile)
    starts_x, size_x = _starts(w, tile + 2 * overlap, tile)
    out, norm_y, norm_x = None, None, None
    for y0 in starts_y:
        wy = _profile(y0, size_y, h, overlap, scale, x.device)  # (scale size_y,)
        for x0 in starts_x:
            wx = _profile(x0, size_x, w, overlap, scale, x.device)
            y = fn(x[:, :, y0:y0 + size_y, x0:x0 + size_x])  # (N, C_out, scale size_y, scale size_x)
            if y.ndim != 4 or y.shape[0] != n or tuple(y.shape[2:]) != (scale * size_y, scale * size_x):
                raise ValueError(f"tiled: fn mapped a {size_y}x{size_x} tile of {n} images to {tuple(y.shape)}; "
                                 f"expected ({n}, C, {scale * size_y}, {scale * size_x}) for scale {scale}")
            if out is None:
                out = y.new_zeros((n, y.shape[1], scale * h, scale * w))
                norm_y, norm_x = y.new_zeros(scale * h), y.new_zeros(scale * w)
            sy, sx = slice(scale * y0, scale * (y0 + size_y)), slice(scale * x0, scale * (x0 + size_x))
            out[:, :, sy, sx] += y * (wy.to(y.dtype)[:, None] * wx.to(y.dtype)[None, :])
            if x0 == starts_x[0]:
                norm_y[sy] += wy.to(y.dtype)
            if y0 == starts_y[0]:
                norm_x[sx] += wx.to(y.dtype)
    # The windows form a product grid, so the summed 2-D weight is norm_y (x) norm_x.
    return out.div_(norm_y[:, None] * norm_x[None, :])


def _starts(length: int, window: int, stride: int) -> tuple[list[int], int]:
    """Window starts along one axis and the window side: 0, stride, ... and the last one moved
    inward to end at `length`; one window of the whole axis when it is shorter than a window."""
    if length <= window:
        return [0], length
    return list(range(0, length - window, stride)) + [length - window], window


def _profile(start: int, size: int, length: int, overlap: int, scale: int, device: torch.device) -> Tensor:
    """1-D blend weight over one window's output pixels (scale x size): zero for the outer
    overlap // 2 input pixels of an inner edge, then a linear ramp to 1 over the rest of the
    2 overlap band. Ramps of two windows sharing exactly 2 overlap pixels sum to 1."""
    w = torch.ones(scale * size, device=device)
    if overlap == 0:
        return w
    margin, ramp = scale * (overlap // 2), scale * (2 * overlap - 2 * (overlap // 2))
    d = torch.arange(scale * size, device=device, dtype=torch.float32)  # output pixels from the left edge
    if start > 0:
        w = torch.minimum(w, ((d + 0.5 - margin) / ramp).clamp(0, 1))
    if start + size < length:
        w = torch.minimum(w, ((scale * size - 1 - d + 0.5 - margin) / ramp).clamp(0, 1))
    return w
