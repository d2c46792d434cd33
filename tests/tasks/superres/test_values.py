"""Stored values of ESRGAN-style super-resolution across its two phases (2 steps of L1
pretraining, then 2 of L1 + relativistic GAN + feature matching; tests/golden/tasks/superres.json,
see tests/tasks/conftest.py), and proof that the comparison catches each loss weight 1% off."""

import numpy as np
import pytest
from PIL import Image

SETS = ["model.g_width=4", "model.d_width=4", "superres.g_blocks=1", "train.batch=4", "superres.patch=16",
        "superres.pretrain_steps=2", "train.steps=4"]


def _train(tmp_path, stored_values, *change):
    g = np.random.default_rng(1)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(g.integers(0, 256, (32, 40), dtype=np.uint8)).save(tmp_path / "scans" / split / f"s{i}.png")
    return stored_values.train("srgan", [*SETS, f"data.source={tmp_path / 'scans'}", *change], tmp_path / "run")


def test_superres_matches_stored_values(tmp_path, stored_values):
    stored_values.check("esrgan", _train(tmp_path, stored_values))


@pytest.mark.parametrize("change", [
    "superres.l1=1.01",  # 1 -> 1.01: both phases
    "superres.adv=0.00505",  # 5e-3 -> 5.05e-3: the GAN phase's adversarial term
    "superres.fm=1.01",  # 1 -> 1.01: feature matching
])
def test_stored_values_catch_a_loss_weight_1_percent_off(change, tmp_path, stored_values):
    stored_values.caught("esrgan", _train(tmp_path, stored_values, change))
