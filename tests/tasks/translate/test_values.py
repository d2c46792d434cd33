"""Stored values of pix2pix and CycleGAN (tests/golden/tasks/translate.json; tests/tasks/conftest.py
says how they are made and compared), and proof that the comparison catches a loss weight 1% off."""

import numpy as np
import pytest
from PIL import Image

SMALL = ["model.g_width=4", "model.d_width=4", "train.batch=4", "translate.grid_examples=4"]
VARIANTS = {
    "pix2pix": ("pix2pix", [*SMALL, "train.steps=4"]),
    # one residual block; the preset's hold-linear schedule, pool and identity term (equal channels)
    "cyclegan": ("cyclegan", [*SMALL, "translate.g_blocks=1", "translate.pool=3", "train.steps=4"]),
}


def _folders(root):
    """paired/{A,B}: B is A's negative; unpaired/{trainA,trainB}: grey noise (both one channel,
    so CycleGAN's identity term is on)."""
    g = np.random.default_rng(0)
    for i in range(8):
        a = (g.random((16, 16)) * 255).astype(np.uint8)
        for path, img in ((root / "paired" / "A", a), (root / "paired" / "B", 255 - a), (root / "unpaired" / "trainA", a),
                          (root / "unpaired" / "trainB", (g.random((16, 16)) * 255).astype(np.uint8))):
            path.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path / f"{i}.png")
    return root


def _train(variant, tmp_path, stored_values, *change):
    preset, sets = VARIANTS[variant]
    src = _folders(tmp_path / "data") / ("paired" if variant == "pix2pix" else "unpaired")
    return stored_values.train(preset, [*sets, f"data.source={src}", *change], tmp_path / "run")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_translate_matches_stored_values(variant, tmp_path, stored_values):
    stored_values.check(variant, _train(variant, tmp_path, stored_values))


@pytest.mark.parametrize("variant, change", [
    ("pix2pix", "translate.l1=101"),  # 100 -> 101
    ("cyclegan", "translate.cycle=10.1"),  # 10 -> 10.1 (the identity weight, 0.5 x cycle, moves with it)
])
def test_stored_values_catch_a_loss_weight_1_percent_off(variant, change, tmp_path, stored_values):
    stored_values.caught(variant, _train(variant, tmp_path, stored_values, change))
