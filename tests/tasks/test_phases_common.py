"""The phases' shared helpers: scalars by name, D frozen while G updates, the default log row."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gankit.tasks.base import Task
from gankit.tasks.phases_common import frozen, stats

NAMES = ("loss_d", "loss_g", "l1", "gan_steps")


def test_stats_are_in_name_order_with_missing_ones_zero():
    loss_g = torch.tensor(2.5, requires_grad=True) * 1.0
    out = stats(NAMES, loss_g=loss_g, loss_d=torch.tensor(-1.0), gan_steps=1.0)
    torch.testing.assert_close(out, torch.tensor([-1.0, 2.5, 0.0, 1.0]), rtol=0, atol=0)
    assert not out.requires_grad and out.dtype == torch.float32


def test_stats_keep_the_tensors_dtype_or_cast_to_the_one_given():
    x = torch.tensor(1 / 3, dtype=torch.float64)
    assert stats(NAMES, l1=x, gan_steps=1.0).dtype == torch.float64
    out = stats(NAMES, torch.float32, l1=x, gan_steps=1.0)
    assert out.dtype == torch.float32 and out[2].item() == torch.tensor(1 / 3, dtype=torch.float32).item()


def test_stats_refuse_a_name_the_task_does_not_have():
    with pytest.raises(KeyError, match="loss_x"):
        stats(NAMES, loss_x=torch.tensor(1.0))


def test_frozen_d_gets_no_gradient_from_gs_update_and_is_restored():
    torch.manual_seed(0)
    G, D = nn.Linear(3, 3), nn.Linear(3, 1)
    D.bias.requires_grad_(False)  # a weight frozen before stays frozen after
    with frozen(D):
        assert not any(p.requires_grad for p in D.parameters())
        D(G(torch.randn(4, 3))).mean().backward()
    assert D.weight.grad is None and G.weight.grad is not None
    assert D.weight.requires_grad and not D.bias.requires_grad


def test_frozen_restores_the_flags_when_the_block_raises():
    D = nn.Linear(2, 1)
    with pytest.raises(RuntimeError):
        with frozen(D, None):
            raise RuntimeError("a failed update")
    assert all(p.requires_grad for p in D.parameters())


def test_the_default_log_row_is_each_scalars_mean_per_step():
    task = Task()
    task.stat_names = ("loss_d", "loss_g")
    st = SimpleNamespace(step=10, samplers={"x": SimpleNamespace(epoch=1.234567)})
    row = task.log_row(None, st, {"loss_d": 3.0, "loss_g": 1.0}, window=4)
    assert row == {"step": 10, "epoch": 1.2346, "loss_d": 0.75, "loss_g": 0.25}
