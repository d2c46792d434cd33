import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.regularizers import (
    clip_weights_,
    gradient_penalty,
    instance_noise_std,
    r1_penalty,
    smooth_real_target,
)

SHAPE = (3, 2, 2, 2)  # (B, C, H, W), 8 features per sample


class LinearD(nn.Module):
    """D(x) = x.flatten(1) @ w + b: grad_x D = w at every x."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w + self.b  # (B,)


def quadratic_d(x, y=None):
    """D(x) = 0.5 ||x||^2: grad_x D = x."""
    return 0.5 * x.flatten(1).pow(2).sum(dim=1)  # (B,)


W = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25, 1.0, -0.5, 1.5])  # ||w||^2 = 8.8125


def test_gradient_penalty_linear_d_is_norm_of_w_minus_one_squared():
    real, fake = torch.randn(SHAPE), torch.randn(SHAPE)
    gp = gradient_penalty(LinearD(W), real, fake)
    assert_close(gp, torch.tensor((math.sqrt(8.8125) - 1) ** 2))


def test_gradient_penalty_alpha_is_drawn_once_per_sample():
    # real = 1, fake = 0, so x_hat_i = alpha_i * 1 and ||grad D(x_hat_i)|| = ||x_hat_i|| = alpha_i sqrt(8)
    real, fake = torch.ones(SHAPE), torch.zeros(SHAPE)
    gp = gradient_penalty(quadratic_d, real, fake, generator=torch.Generator().manual_seed(7))

    alpha = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(7)).flatten()
    want = ((alpha * math.sqrt(8) - 1) ** 2).mean()
    assert_close(gp, want)

    # the per-pixel alpha of the known bug gives another value from the same generator state
    per_pixel = torch.rand(SHAPE, generator=torch.Generator().manual_seed(7))
    wrong = ((per_pixel.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert not torch.allclose(gp, wrong)


def test_gradient_penalty_general_interpolate_with_seeded_generator():
    real, fake = torch.randn(SHAPE), torch.randn(SHAPE)
    gp = gradient_penalty(quadratic_d, real, fake, generator=torch.Generator().manual_seed(3))
    alpha = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    x_hat = alpha * real + (1 - alpha) * fake  # grad of 0.5||x||^2 is x itself
    assert_close(gp, ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean())


def test_gradient_penalty_passes_y_to_d():
    # conditional linear D: D(x, y) = x . w[y], so the gradient for sample i is w[y_i]
    w = torch.stack([W, 2 * W])  # norms sqrt(8.8125), 2 sqrt(8.8125)
    d = lambda x, y: (x.flatten(1) * w[y]).sum(dim=1)  # noqa: E731
    y = torch.tensor([0, 1, 1])
    gp = gradient_penalty(d, torch.randn(SHAPE), torch.randn(SHAPE), y=y)
    n = math.sqrt(8.8125)
    assert_close(gp, torch.tensor(((n - 1) ** 2 + 2 * (2 * n - 1) ** 2) / 3))


def test_gradient_penalty_trains_d_and_leaves_generator_alone():
    D = LinearD(W)
    fake = torch.randn(SHAPE, requires_grad=True)  # as if from G
    gp = gradient_penalty(D, torch.randn(SHAPE), fake)
    gp.backward()  # fails unless the penalty was built with create_graph=True
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||;  b does not appear in the gradient
    n = math.sqrt(8.8125)
    assert_close(D.w.grad, 2 * (n - 1) * W / n)
    assert D.b.grad is None or D.b.grad.item() == 0.0
    assert fake.grad is None  # fake is detached: the penalty is D's alone


def test_r1_linear_d_is_squared_norm_of_w():
    assert_close(r1_penalty(LinearD(W), torch.randn(SHAPE)), torch.tensor(8.8125))


def test_r1_quadratic_d_is_mean_squared_norm_of_x():
    real = torch.arange(24, dtype=torch.float32).reshape(SHAPE) / 10
    want = sum((real[i] ** 2).sum() for i in range(3)) / 3  # sum of k^2/100, k < 24, over 3
    assert_close(r1_penalty(quadratic_d, real), want)
    assert want.item() == pytest.approx(4324 / 100 / 3)


def test_r1_trains_d_through_create_graph():
    D = LinearD(W)
    r1_penalty(D, torch.randn(SHAPE)).backward()
    assert_close(D.w.grad, 2 * W)  # d/dw ||w||^2


def test_clip_weights_clamps_every_parameter_in_place():
    D = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with torch.no_grad():
        D[0].weight.copy_(torch.linspace(-1, 1, 12).reshape(4, 3))
    before = D[0].weight
    clip_weights_(D, 0.1)
    assert D[0].weight is before  # same tensor, changed in place
    assert_close(D[0].weight, torch.linspace(-1, 1, 12).reshape(4, 3).clamp(-0.1, 0.1))
    for p in D.parameters():
        assert p.abs().max() <= torch.tensor(0.1)  # float32 0.1, the clamp bound
        assert p.requires_grad
    assert D[0].weight.abs().max().item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="> 0"):
        clip_weights_(D, 0.0)


def test_instance_noise_decays_linearly_to_zero():
    assert instance_noise_std(0, 0.1, 100) == pytest.approx(0.1)
    assert instance_noise_std(25, 0.1, 100) == pytest.approx(0.075)
    assert instance_noise_std(50, 0.1, 100) == pytest.approx(0.05)
    assert instance_noise_std(99, 0.1, 100) == pytest.approx(0.001)
    assert instance_noise_std(100, 0.1, 100) == 0.0
    assert instance_noise_std(10_000, 0.1, 100) == 0.0
    assert instance_noise_std(0, 0.0, 100) == 0.0
    assert instance_noise_std(0, 0.1, 0) == 0.0


def test_smooth_real_target_is_one_sided():
    assert smooth_real_target(0.1) == pytest.approx(0.9)
    assert smooth_real_target(0.0) == 1.0
