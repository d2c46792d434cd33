"""Stored values of frame interpolation (tests/golden/tasks/interpolate.json, see
tests/tasks/conftest.py), and proof that the comparison catches the L1 weight 1% off.

Data: `pans` (camera pans over scikit-image's photos, exact in-between frames), 16x16 windows.
Without flow guidance: its halfway warps come from OpenCV's Farneback flow, whose numbers are
not ours to pin (the fusion of the warps is checked by hand in test_losses.py)."""

import pytest

SETS = ["data.source=pans", "data.resolution=16", "interpolate.flow=false", "model.g_width=4", "model.d_width=4",
        "train.batch=4", "interpolate.grid_examples=2", "train.steps=4"]


def test_interpolate_matches_stored_values(tmp_path, stored_values):
    stored_values.check("residual", stored_values.train("frame-interp", SETS, tmp_path / "run"))


@pytest.mark.parametrize("change", ["interpolate.l1=101"])  # 100 -> 101
def test_stored_values_catch_a_loss_weight_1_percent_off(change, tmp_path, stored_values):
    stored_values.caught("residual", stored_values.train("frame-interp", [*SETS, change], tmp_path / "run"))
