"""Stored values of the reconstruction presets (tests/golden/tasks/recon.json, see
tests/tasks/conftest.py): low-dose CT (the Poisson draws are part of the values) and MRI with data
consistency; and proof that the comparison catches the L1 weight 1% off and the dose 1% off."""

import pytest

SETS = ["model.g_width=4", "model.d_width=4", "train.batch=4", "recon.size=32", "recon.grid_examples=2",
        "train.steps=4"]
# the presets as they were when the values were stored (pix2pix's U-Net, constant lr 2e-4)
STORED = ["recon.g_arch=pix2pix", "train.lr_g=2e-4", "train.lr_schedule=constant"]
VARIANTS = {"ct": ("recon-ct", ["recon.photons=1000", *STORED]), "mri": ("recon-mri", STORED)}


def _train(tmp_path, stored_values, variant, *change):
    preset, sets = VARIANTS[variant]
    return stored_values.train(preset, [*SETS, *sets, *change], tmp_path / "run")


@pytest.mark.slow  # two float64 runs with their phantoms: ~10 s on an idle 2-core machine
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_recon_matches_stored_values(variant, tmp_path, stored_values):
    stored_values.check(variant, _train(tmp_path, stored_values, variant))


@pytest.mark.slow
@pytest.mark.parametrize("change", ["recon.l1=101", "recon.photons=1010"])  # 100, 1000 -> 1% more
def test_stored_values_catch_a_change_of_1_percent(change, tmp_path, stored_values):
    stored_values.caught("ct", _train(tmp_path, stored_values, "ct", change))
