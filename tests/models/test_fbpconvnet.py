"""FBPConvNet's U-Net (gankit.models.fbpconvnet): shapes at the task's size and at odd sizes, the
zero correction it starts from, its parameter count by hand, one training step, bad settings."""

import pytest
import torch

from gankit.errors import GankitError
from gankit.models.fbpconvnet import FBPConvNet


def _perturbed(G):
    """G with a non-zero last layer, so that its output depends on the whole network."""
    torch.nn.init.normal_(G.out.weight)
    return G


@pytest.mark.parametrize("size, levels", [((64, 64), 4), ((37, 50), 4), ((17, 16), 3)])
@pytest.mark.parametrize("cin, cout", [(1, 1), (2, 3)])
def test_shapes_at_the_task_size_and_at_odd_sizes(size, levels, cin, cout):
    torch.manual_seed(0)
    G = _perturbed(FBPConvNet(cin, cout, size, width=4, levels=levels)).eval()
    x = torch.randn(2, cin, *size)
    y = G(x)
    assert y.shape == (2, cout, *size)
    assert G.depth == levels - 1 and G.down[-1][0].out_channels == 4 * 2 ** (levels - 1)  # doubling per level
    # output pixels are aligned with input pixels: a change in one corner reaches that corner
    # and, where the image is larger than the receptive field (not at 17 px), not the opposite one
    x2 = x.clone()
    x2[..., 0, 0] += 1
    moved = (G(x2) - y).abs().sum((0, 1)) > 0
    assert moved[0, 0] and (min(size) < 32 or not moved[-1, -1])


def test_the_correction_is_zero_at_init_and_not_after_a_step():
    torch.manual_seed(0)
    G = FBPConvNet(1, 1, 16, width=4)
    x, target = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    assert torch.equal(G(x), torch.zeros_like(x))  # the estimate x + G(x) starts as the input itself
    opt = torch.optim.Adam(G.parameters(), 1e-2)
    losses = []
    for _ in range(3):
        loss = (x + G(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert G(x).abs().max() > 0 and losses[-1] < losses[0]


def test_parameter_count_by_hand():
    # width 2, two levels, batch norm (2 per channel), convs without bias but the 1x1 output:
    # level 0: 3x3 1->2 (18) + BN (4) + 3x3 2->2 (36) + BN (4) = 62
    # level 1: 3x3 2->4 (72) + BN (8) + 3x3 4->4 (144) + BN (8) = 232
    # up: 3x3 transposed 4->2 (72) + BN (4) = 76; merge: 3x3 4->2 (72) + BN (4) + 3x3 2->2 (36) + BN (4) = 116
    # out: 1x1 2->1 (2) + bias (1) = 3
    G = FBPConvNet(1, 1, 8, width=2, levels=2)
    assert sum(p.numel() for p in G.parameters()) == 62 + 232 + 76 + 116 + 3


def test_bad_settings_are_refused():
    with pytest.raises(GankitError, match="cannot be reflection-padded"):
        FBPConvNet(1, 1, 3, levels=4)  # 3 px cannot be padded to 8
    with pytest.raises(ValueError, match="at least 2 levels"):
        FBPConvNet(1, 1, 64, levels=1)
    with pytest.raises(ValueError, match="norm must be one of"):
        FBPConvNet(1, 1, 64, norm="group")
