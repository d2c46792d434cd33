import torch

from gankit.data import load_data
from gankit.metrics.toy import mode_stats


def test_real_data_covers_every_mode():
    for name, k in (("ring8", 8), ("grid25", 25)):
        s = mode_stats(load_data(name).x[:5000], name)
        assert s["modes"] == k and s["n_modes"] == k and s["hq"] > 0.98


def test_collapsed_and_off_mode_samples():
    # 1000 points on mode 0 of ring8 (at (2, 0)), 1000 points at the origin (no mode)
    pts = torch.cat([torch.tensor([[2.0, 0.0]]).repeat(1000, 1), torch.zeros(1000, 2)])
    s = mode_stats(pts, "ring8")
    assert s["modes"] == 1 and abs(s["hq"] - 0.5) < 1e-6 and s["per_mode"][0] == 1000


def test_a_few_strays_do_not_cover_a_mode():
    # 990 on mode 0, 10 on mode 4 (at (-2, 0)): 10 < 0.1 * 1000 / 8
    pts = torch.cat([torch.tensor([[2.0, 0.0]]).repeat(990, 1), torch.tensor([[-2.0, 0.0]]).repeat(10, 1)])
    assert mode_stats(pts, "ring8")["modes"] == 1
    assert mode_stats(pts, "ring8", min_share=0.0)["modes"] == 2


def test_just_outside_three_std_is_not_high_quality():
    pts = torch.tensor([[2.0 + 3 * 0.02 * 1.01, 0.0], [2.0 + 3 * 0.02 * 0.99, 0.0]])
    assert mode_stats(pts, "ring8", min_share=0.0)["hq"] == 0.5
