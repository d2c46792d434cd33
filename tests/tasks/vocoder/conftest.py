"""The vocoder tests' shared input: a folder of four one-second tones (220-660 Hz) as 16 kHz WAVs."""

import pytest

from .test_vocoder import _tone, _wav


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("tones")
    for i, f in enumerate((220, 330, 440, 660)):
        _wav(d / f"{i}.wav", _tone(f))
    return d
