import math

import pytest
import torch
from torch.testing import assert_close

from gankit.losses import (LOSSES, d_bce, d_hinge, d_least_squares, d_relativistic, d_relativistic_pairing,
                           d_wasserstein, g_hinge, g_least_squares, g_minimax, g_nonsaturating, g_relativistic,
                           g_relativistic_pairing, g_wasserstein)

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 3.0])


def sp(x):  # softplus by hand
    return math.log(1 + math.exp(x))


def test_d_bce_matches_closed_form():
    # -mean log sigma(real) - mean log(1 - sigma(fake))
    want = (sp(-0.0) + sp(-2.0)) / 2 + (sp(-1.0) + sp(3.0)) / 2
    assert_close(d_bce(REAL, FAKE), torch.tensor(want))
    assert want == pytest.approx(2.090962, abs=1e-6)


def test_d_bce_equals_bce_on_probabilities():
    bce = torch.nn.BCELoss()
    want = bce(torch.sigmoid(REAL), torch.ones(2)) + bce(torch.sigmoid(FAKE), torch.zeros(2))
    assert_close(d_bce(REAL, FAKE), want)


def test_g_losses_match_closed_form():
    assert_close(g_nonsaturating(FAKE), torch.tensor((sp(1.0) + sp(-3.0)) / 2))
    assert_close(g_minimax(FAKE), torch.tensor(-(sp(-1.0) + sp(3.0)) / 2))
    assert g_nonsaturating(FAKE).item() == pytest.approx(0.680924, abs=1e-6)


def test_losses_finite_at_extreme_logits():
    real = torch.tensor([200.0, -200.0], requires_grad=True)
    fake = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss = d_bce(real, fake) + g_nonsaturating(fake) + g_minimax(fake)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    assert d_bce(torch.tensor([200.0]), torch.tensor([-200.0])).item() == pytest.approx(0.0, abs=1e-30)


def test_nonsaturating_keeps_gradient_where_minimax_saturates():
    # When D confidently rejects a fake (logit -10), minimax's gradient vanishes (sigma(-10)),
    # the non-saturating loss's does not (1 - sigma(-10)): the reason the tutorial uses it.
    f1 = torch.tensor([-10.0], requires_grad=True)
    g_nonsaturating(f1).backward()
    f2 = torch.tensor([-10.0], requires_grad=True)
    g_minimax(f2).backward()
    assert_close(f1.grad, torch.tensor([-(1 - 1 / (1 + math.exp(10)))]))
    assert_close(f2.grad, torch.tensor([-1 / (1 + math.exp(10))]))
    assert abs(f1.grad.item()) > 1e4 * abs(f2.grad.item())


def test_label_smoothing_is_one_sided():
    # real target 0.9: -0.9 log sigma(r) - 0.1 log(1 - sigma(r)); fakes unchanged
    want = (0.9 * sp(-0.0) + 0.1 * sp(0.0) + 0.9 * sp(-2.0) + 0.1 * sp(2.0)) / 2 + (sp(-1.0) + sp(3.0)) / 2
    assert_close(d_bce(REAL, FAKE, real_target=0.9), torch.tensor(want))


def test_least_squares():
    # 1/2 mean((r-1)^2) + 1/2 mean(f^2) = 1/2 (1 + 1)/2 + 1/2 (1 + 9)/2
    assert_close(d_least_squares(REAL, FAKE), torch.tensor(3.0))
    assert_close(g_least_squares(FAKE), torch.tensor(2.0))  # 1/2 ((-2)^2 + 2^2)/2


def test_hinge():
    # mean(relu(1 - r)) + mean(relu(1 + f)) = (1 + 0)/2 + (0 + 4)/2
    assert_close(d_hinge(REAL, FAKE), torch.tensor(2.5))
    assert_close(g_hinge(FAKE), torch.tensor(-1.0))


def test_wasserstein_sign():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, -3.0])
    assert_close(d_wasserstein(real, fake), torch.tensor(-3.0))  # E[D(G(z))] - E[D(x)] = -2 - 1
    assert_close(g_wasserstein(fake), torch.tensor(2.0))


def test_relativistic_average():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])  # means 1 and 0
    # D: mean sp(-(r - mean f)) + mean sp(f - mean r)
    want_d = (sp(-0.0) + sp(-2.0)) / 2 + (sp(-2.0) + sp(0.0)) / 2
    # G: mean sp(-(f - mean r)) + mean sp(r - mean f)
    want_g = (sp(2.0) + sp(0.0)) / 2 + (sp(0.0) + sp(2.0)) / 2
    assert_close(d_relativistic(real, fake), torch.tensor(want_d))
    assert_close(g_relativistic(fake, real), torch.tensor(want_g))
    with pytest.raises(ValueError):
        g_relativistic(fake)


def test_relativistic_pairing():
    # R3GAN: D: mean sp(-(r_i - f_i)), each real with its own fake; G: mean sp(-(f_i - r_i))
    assert_close(d_relativistic_pairing(REAL, FAKE), torch.tensor((sp(-1.0) + sp(1.0)) / 2))
    assert_close(g_relativistic_pairing(FAKE, REAL), torch.tensor((sp(1.0) + sp(-1.0)) / 2))
    real, fake = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 0.0])
    assert_close(d_relativistic_pairing(real, fake), torch.tensor((sp(-3.0) + sp(0.0)) / 2))
    assert_close(g_relativistic_pairing(fake, real), torch.tensor((sp(3.0) + sp(0.0)) / 2))
    with pytest.raises(ValueError):
        g_relativistic_pairing(fake)


def test_loss_table():
    assert set(LOSSES) == {"ns", "minimax", "ls", "hinge", "wasserstein", "ragan", "rpgan"}
    assert LOSSES["rpgan"].g_needs_real
    assert LOSSES["ns"].d is d_bce and LOSSES["ns"].g is g_nonsaturating and LOSSES["ns"].bce
    assert LOSSES["ragan"].g_needs_real and not LOSSES["hinge"].bce
