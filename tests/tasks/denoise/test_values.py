"""Stored values of the denoising preset (tests/golden/tasks/denoise.json, see
tests/tasks/conftest.py), and proof that the comparison catches the L1 weight 1% off and a noise
level 1% off."""

import numpy as np
import pytest
from PIL import Image

SETS = ["model.g_width=4", "model.d_width=4", "train.batch=4", "denoise.patch=16", "denoise.grid_examples=2",
        "denoise.eval_noise=[gaussian:25]", "train.steps=4"]


def _train(tmp_path, stored_values, *change):
    g = np.random.default_rng(3)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(g.integers(0, 256, (32, 40), dtype=np.uint8)).save(tmp_path / "scans" / split / f"s{i}.png")
    return stored_values.train("denoise", [*SETS, f"data.source={tmp_path / 'scans'}", *change], tmp_path / "run")


def test_denoise_matches_stored_values(tmp_path, stored_values):
    stored_values.check("denoise", _train(tmp_path, stored_values))


@pytest.mark.parametrize("change", ["denoise.l1=101", "denoise.noise=gaussian:25.25"])  # 100, 25 -> 1% more
def test_stored_values_catch_a_change_of_1_percent(change, tmp_path, stored_values):
    stored_values.caught("denoise", _train(tmp_path, stored_values, change))
