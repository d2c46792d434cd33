"""Tiled inference: equal to untiled for a local fn, blended across tiles, and its edge cases."""

import pytest
import torch
import torch.nn.functional as F

from gankit.tiling import tiled


def _local_fn(scale: int, up: str, channels: int = 3):
    """A 3x3 conv with a fixed kernel (receptive field 1 pixel) and x`scale` upsampling that adds
    none: nearest, or PixelShuffle of a conv with channels * scale^2 outputs."""
    g = torch.Generator().manual_seed(1)
    c_out = channels * scale * scale if up == "shuffle" else channels
    k = torch.randn(c_out, channels, 3, 3, generator=g)
    calls = []

    def fn(t):
        calls.append(tuple(t.shape))
        y = F.conv2d(t, k, padding=1)  # zero padding: wrong near a tile's inner edge, as a real net is
        if up == "shuffle":
            return F.pixel_shuffle(y, scale)
        return F.interpolate(y, scale_factor=scale, mode="nearest") if scale > 1 else y

    return fn, calls


@pytest.mark.parametrize("scale,up", [(1, "nearest"), (2, "nearest"), (2, "shuffle"), (4, "nearest"), (4, "shuffle")])
def test_tiled_equals_untiled_for_a_local_fn(scale, up):
    fn, calls = _local_fn(scale, up)
    x = torch.randn(2, 3, 37, 53)
    want = fn(x)
    calls.clear()
    got = tiled(fn, x, tile=16, overlap=8, scale=scale)
    assert got.shape == (2, 3, 37 * scale, 53 * scale)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # windows of tile + 2 overlap = 32, all full size: 2 rows (0, 5) x 3 columns (0, 16, 21)
    assert calls == [(2, 3, 32, 32)] * 6


def test_without_overlap_the_seams_show():
    fn, _ = _local_fn(1, "nearest")
    x = torch.randn(1, 3, 37, 53)
    err = (tiled(fn, x, tile=16, overlap=0) - fn(x)).abs()
    assert err[..., 15:17].max() > 0.1  # windows start at columns 0, 16, 32, 37: a seam at 15 | 16
    assert err[..., 2:13, 2:13].max() < 1e-5  # inside the first window, away from its edges: exact


def test_the_blend_is_a_linear_ramp_across_the_shared_band():
    # fn returns 0 on the first window and 1 on the second: the output is the second's weight.
    # W = 48, windows of 32 at 0 and 16; window 1's weight at column i is (i - 16 + 0.5 - 4) / 8 clamped.
    seen = []

    def fn(t):
        seen.append(None)
        return torch.full_like(t, float(len(seen) - 1))

    out = tiled(fn, torch.zeros(1, 1, 16, 48), tile=16, overlap=8)
    want = ((torch.arange(48.0) - 19.5) / 8).clamp(0, 1)
    torch.testing.assert_close(out[0, 0], want.expand(16, 48))
    assert len(seen) == 2  # the 16 rows are shorter than a window: one window of all of them


def test_an_image_smaller_than_a_tile_is_processed_whole():
    fn, calls = _local_fn(2, "shuffle")
    x = torch.randn(1, 3, 10, 12)
    want = fn(x)
    calls.clear()
    torch.testing.assert_close(tiled(fn, x, tile=16, overlap=8, scale=2), want, atol=1e-6, rtol=0)
    assert calls == [(1, 3, 10, 12)]


def test_tile_smaller_than_twice_the_overlap_is_refused():
    fn, _ = _local_fn(1, "nearest")
    x = torch.randn(1, 3, 40, 40)
    with pytest.raises(ValueError, match="tile >= max"):
        tiled(fn, x, tile=15, overlap=8)
    with pytest.raises(ValueError, match="overlap >= 0"):
        tiled(fn, x, tile=16, overlap=-1)
    tiled(fn, x, tile=16, overlap=8)  # the boundary is allowed


def test_an_fn_that_breaks_the_scale_is_a_clear_error():
    fn, _ = _local_fn(2, "nearest")
    with pytest.raises(ValueError, match="expected \\(1, C, 128, 128\\) for scale 4"):
        tiled(fn, torch.randn(1, 3, 40, 40), tile=16, overlap=8, scale=4)
