import math

import pytest
import torch
from torch.testing import assert_close

from gankit.losses import LOSSES, d_bce, g_minimax, g_nonsaturating

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


def test_loss_table_names():
    assert set(LOSSES) == {"ns", "minimax"}
    assert LOSSES["ns"] == (d_bce, g_nonsaturating)
