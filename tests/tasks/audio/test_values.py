"""Stored values of WaveGAN and SpecGAN (tests/golden/tasks/audio.json, see tests/tasks/conftest.py),
and proof that the comparison catches the gradient penalty's weight 1% off."""

import wave

import numpy as np
import pytest

SMALL = ["model.g_width=2", "model.d_width=2", "model.z_dim=4", "audio.grid_clips=2", "audio.griffin_lim=2"]
# SpecGAN's double backward through 128x128 convolutions is ~10x WaveGAN's: fewer, smaller steps
SIZE = {"wavegan": ["train.batch=4", "train.n_critic=2", "train.steps=4"],
        "specgan": ["train.batch=2", "train.n_critic=1", "train.steps=2"]}


def _tones(root):
    """Eight half-second sine tones, 16 kHz int16."""
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 16000
    for freq in (220, 330, 440, 550, 660, 770, 880, 990):
        with wave.open(str(root / f"{freq}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16).tobytes())
    return root


def _train(preset, tmp_path, stored_values, *change):
    return stored_values.train(preset, [*SMALL, *SIZE[preset], f"data.source={_tones(tmp_path / 'tones')}", *change], tmp_path / "run")


@pytest.mark.parametrize("preset", ["wavegan", "specgan"])
def test_audio_matches_stored_values(preset, tmp_path, stored_values):
    stored_values.check(preset, _train(preset, tmp_path, stored_values))


@pytest.mark.parametrize("preset, change", [("wavegan", "reg.gp=10.1")])  # 10 -> 10.1
def test_stored_values_catch_a_penalty_weight_1_percent_off(preset, change, tmp_path, stored_values):
    stored_values.caught(preset, _train(preset, tmp_path, stored_values, change))
