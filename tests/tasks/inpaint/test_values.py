"""Stored values of the inpainting preset (tests/golden/tasks/inpaint.json, see
tests/tasks/conftest.py), and proof that the comparison catches each L1 weight 1% off.

Box holes only: the free-form strokes of the preset's "mixed" masks are drawn by OpenCV, whose
rasterisation is not ours to pin; the phase's maths is the same for any mask."""

import numpy as np
import pytest
from PIL import Image

SETS = ["model.g_width=4", "model.d_width=4", "train.batch=4", "inpaint.patch=16", "inpaint.grid_examples=2",
        "inpaint.mask=box:0.1-0.5", "train.steps=4"]


def _train(tmp_path, stored_values, *change):
    g = np.random.default_rng(2)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(g.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(tmp_path / "scans" / split / f"s{i}.png")
    return stored_values.train("inpaint", [*SETS, f"data.source={tmp_path / 'scans'}", *change], tmp_path / "run")


def test_inpaint_matches_stored_values(tmp_path, stored_values):
    stored_values.check("inpaint", _train(tmp_path, stored_values))


@pytest.mark.parametrize("change", ["inpaint.l1_hole=101", "inpaint.l1_valid=10.1"])  # 100, 10 -> 1% more
def test_stored_values_catch_a_loss_weight_1_percent_off(change, tmp_path, stored_values):
    stored_values.caught("inpaint", _train(tmp_path, stored_values, change))
