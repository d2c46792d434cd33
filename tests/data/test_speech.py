"""Speech data (gankit.data.speech): the spoken-digit builder is deterministic and keeps its test
voices apart, clips are trimmed, normalised and centred as documented, and a user's folder is
resampled with a note."""

import shutil
import wave

import numpy as np
import pytest

from gankit.data.speech import CLIP, RATE, TEST_VARIANTS, build_spoken_digits, load_audio, load_audio_folder, recipe, to_clip
from gankit.errors import GankitError


def test_to_clip_trims_normalises_and_centres():
    x = np.concatenate([np.zeros(100), 0.001 * np.ones(10), [0.5, -0.25, 0.5], np.zeros(50)]).astype(np.float32)
    c = to_clip(x, length=9)
    # the quiet run (under 1% of the peak) and the silence go; 3 loud samples, scaled to peak 0.9, centred
    assert c.tolist() == [0, 0, 0, 29490, -14745, 29490, 0, 0, 0]
    assert to_clip(np.zeros(5, np.float32), 4).tolist() == [0, 0, 0, 0]
    long = to_clip(np.linspace(-1, 1, 21).astype(np.float32), 5)
    assert len(long) == 5 and long.dtype == np.int16


def test_recipe_is_fixed_and_test_voices_are_unseen_in_training():
    train, test = recipe("train", 20), recipe("test", 5)
    assert train == recipe("train", 20) and len(train) == 200 and len(test) == 50
    assert not {v.split("+")[1] for _, v, _, _ in train} & set(TEST_VARIANTS)
    assert {v.split("+")[1] for _, v, _, _ in test} <= set(TEST_VARIANTS)
    assert all(120 <= s <= 220 and 20 <= p <= 80 for _, _, s, p in train)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make test installs it)")
def test_spoken_digits_build_is_deterministic():
    a, b = build_spoken_digits("test", per_digit=1), build_spoken_digits("test", per_digit=1)
    assert a.x.shape == (10, CLIP) and a.x.dtype == np.int16 and a.y.tolist() == list(range(10))
    assert np.array_equal(a.x, b.x)
    assert (np.abs(a.x).max(1) == 29490).all()  # every clip peak-normalised: speech was made
    assert "espeak-ng" in a.notes[0]


def _wav(path, rate, seconds=0.5, freq=440.0, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(x, channels).tobytes())


def test_user_folder_is_resampled_with_a_note(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _wav(tmp_path / "a" / "1.wav", RATE)
    _wav(tmp_path / "b" / "2.wav", 8000, channels=2)  # another rate, stereo
    _wav(tmp_path / "b" / "3.wav", RATE, seconds=2.0)  # longer than a clip
    d = load_audio_folder(tmp_path)
    assert d.classes == ["a", "b"] and d.y.tolist() == [0, 1, 1] and d.x.shape == (3, CLIP)
    assert "1 files resampled to 16000 Hz" in d.notes and "1 clips longer than 16384 samples were centre-cut" in d.notes
    # 0.5 s of a 440 Hz tone stays 0.5 s long after resampling from 8 kHz
    assert abs(int((d.x[1] != 0).sum()) - RATE // 2) < 200
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    with pytest.raises(GankitError, match="bad.wav: not a readable audio file"):
        load_audio_folder(tmp_path)
    with pytest.raises(GankitError, match="unknown audio source"):
        load_audio("nowhere-at-all")
