"""The vocoder task's `gankit serve` panel: text said by eSpeak NG, re-synthesised by the run's
vocoder, played, with the two mel spectrograms. Found by `gankit serve` through the registry
(`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import torch

from gankit.apps.serve.models import Choice, Panel, Result, Str, stem
from gankit.run import Run

VOICES = ("en-us", "en-gb", "en-us+m3", "en-us+f2", "en-gb+m6", "en-gb+f4")  # the last two: held-out test voices
MAX_TEXT = 300  # characters: about 20 s of speech, a few seconds of CPU


def speak_text(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.audio.infer import wav_bytes
    from gankit.tasks.vocoder.infer import mel_of_wave, render_speech, vocode_mel
    from gankit.tasks.vocoder.mel import mel, spec_of
    from gankit.tasks.vocoder.task import mel_image
    from gankit.viz import make_grid

    x = render_speech(p["text"], p["voice"])
    spec = spec_of(run.config)
    m = mel_of_wave(x, spec)
    y = vocode_mel(run, m)
    grid = make_grid(torch.cat([mel_image(m), mel_image(mel(y[None], spec))]), nrow=1)
    return Result(grid, f"{stem(run)}-speech.wav", ["eSpeak NG made the speech; the vocoder re-synthesised its mel "
                                                      "(top: eSpeak's mel, bottom: the vocoded clip's)"],
                  audio=wav_bytes(y[:len(x)]))


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    from gankit.tasks.vocoder.infer import what_vocodes

    return {"speak": Panel("Speak", "text said by eSpeak NG, its mel spectrogram turned back into a waveform by this "
                           f"run, {what_vocodes(run)} (it makes the waveform, not the words)",
                           {"text": Str(MAX_TEXT, "the quick brown fox"), "voice": Choice(VOICES, "en-us")},
                           speak_text)}
