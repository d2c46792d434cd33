"""gankit.util's eval_mode: the networks in eval mode inside the block, each one's own mode after it."""

import pytest
from torch import nn

from gankit.util import eval_mode


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))


def test_eval_mode_sets_eval_inside_and_restores_each_modules_mode():
    G, D = _net().train(), _net().eval()
    with eval_mode(G, None, D):  # None: an absent network, skipped
        assert not G.training and not G[1].training and not D.training
    assert G.training and G[1].training  # back to training, submodules too
    assert not D.training  # a module that was in eval mode stays there


def test_eval_mode_restores_the_mode_when_the_block_raises():
    G = _net().train()
    with pytest.raises(RuntimeError, match="scoring failed"):
        with eval_mode(G):
            assert not G.training
            raise RuntimeError("scoring failed")
    assert G.training and G[1].training
