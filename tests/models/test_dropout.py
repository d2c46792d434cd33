"""gankit's CPU dropout: the same distribution as nn.Dropout, from cheaper random bits."""

import pytest
import torch

from gankit.models.base import Dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_drops_with_probability_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(1000, 1001)  # an odd number of elements: not a multiple of the 4 per draw
    y = Dropout(p)(x)
    dropped = (y == 0).float().mean().item()
    sigma = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(dropped - p) < 5 * sigma
    values = y.unique().tolist()
    assert len(values) == 2 and values[0] == 0 and values[1] == pytest.approx(1 / (1 - round(p * 65536) / 65536))
    assert abs(y.mean().item() - 1) < 5 * sigma / (1 - p)


def test_masks_are_independent_across_elements_and_calls():
    """Neighbouring elements share one 64-bit draw: their masks must still be independent."""
    torch.manual_seed(0)
    d = Dropout(0.5)
    a, b = (d(torch.ones(400_000)) > 0).float(), (d(torch.ones(400_000)) > 0).float()
    for u, v in ((a[0::4], a[1::4]), (a[1::4], a[2::4]), (a[2::4], a[3::4]), (a, b)):
        assert abs(torch.corrcoef(torch.stack([u, v]))[0, 1].item()) < 0.01


def test_gradient_is_the_mask_times_the_scale_and_eval_is_identity():
    torch.manual_seed(0)
    x = torch.randn(64, 33, requires_grad=True)
    d = Dropout(0.3)
    y = d(x)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, torch.where(y != 0, d._scale, 0.0))
    torch.manual_seed(1)
    first = d(x)
    torch.manual_seed(1)
    assert torch.equal(d(x), first)  # reproducible from torch's seed (checkpointed with the run)
    assert d.eval()(x) is x


def test_bad_probability_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)
