"""The audio task's `gankit serve` panel: new clips, played, with their spectrograms (a
digit-conditional run's: its classes in turn, or all of one class picked on the page). Found by
`gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import torch

from gankit.apps.serve.models import MAX_SEED, Choice, Int, Panel, Result, stem
from gankit.run import Run
from gankit.viz import make_grid


GRID_CLIPS = 16  # the most clips one audio request makes (16 s of audio, SpecGAN's Griffin-Lim included)
EACH = "each in turn"  # a conditional run's classes, one clip each in turn


def sample_clips(run: Run, p: dict, images: dict) -> Result:
    """n clips: their spectrograms as the grid, and one WAV of them in that order, 0.25 s apart."""
    from gankit.data.speech import spectrogram_images
    from gankit.tasks.audio.infer import joined, sample_audio, wav_bytes

    classes = [str(c) for c in run.data_meta.get("classes") or []]
    label = None if p.get("class", EACH) == EACH else classes.index(p["class"])
    clips = sample_audio(run, p["n"], p["seed"], label)  # float (n, T) in [-1, 1]
    meta = run.data_meta
    mu, sigma = torch.tensor(meta["spec_mu"]), torch.tensor(meta["spec_sigma"])
    grid = make_grid(spectrogram_images(clips, mu, sigma), nrow=min(p["n"], 8))
    return Result(grid, f"{stem(run)}-seed{p['seed']}-n{p['n']}.wav", audio=wav_bytes(joined(clips)))


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    n = min(max_samples, GRID_CLIPS)
    rate = run.data_meta.get("rate", 16_000)
    fields = {"n": Int(1, n, min(8, n)), "seed": Int(0, MAX_SEED, 0)}
    if run.conditional:  # G(z, class): the page picks the class
        fields["class"] = Choice((EACH, *map(str, run.data_meta["classes"])), EACH)
    return {"sample": Panel("Sample", f"new clips ({rate // 1000} kHz), played one after another; the grid shows "
                            "their spectrograms in the same order" + ("; a class, or each in turn" if run.conditional
                                                                      else ""), fields, sample_clips)}
