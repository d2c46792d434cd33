"""What the reconstruction tests share: the paired step's losses checked against the written formula."""

from __future__ import annotations

import pytest
import torch


def assert_paired_losses(st, D, y: torch.Tensor, x: torch.Tensor, out: torch.Tensor, gan: float, l1: float) -> None:
    """The D and G losses `recon_phase` handed to st.update are the ns pair over (y, x) and
    (y, out) with weights gan and l1 (phases_common.paired_step), and one percent more L1 is not."""
    with torch.no_grad():
        real, fake = D(torch.cat([y, x], 1)).flatten(1), D(torch.cat([y, out], 1)).flatten(1)
        sp = torch.nn.functional.softplus
        loss_d = sp(-real).mean() + sp(fake).mean()  # -log sigmoid(real) - log(1 - sigmoid(fake))
        adv, dist = sp(-fake).mean(), (out - x).abs().mean()
    (got_d,), (got_g,) = st.losses["D"], st.losses["G"]
    torch.testing.assert_close(got_d, loss_d)
    torch.testing.assert_close(got_g, gan * adv + l1 * dist)
    assert not torch.allclose(got_g, gan * adv + 1.01 * l1 * dist)  # one percent more L1 is a different loss


@pytest.fixture
def paired_losses():
    """`assert_paired_losses`."""
    return assert_paired_losses
