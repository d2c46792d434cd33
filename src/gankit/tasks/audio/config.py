"""The audio task's config section (`audio:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged
from gankit.errors import GankitError


@dataclass(frozen=True)
class AudioConfig:
    """The audio task (task: audio): WaveGAN (raw 16 kHz waveforms, phase shuffle in D) or SpecGAN
    (normalised log spectrograms, inverted by Griffin-Lim), Donahue et al. 2019. The model size d
    is model.g_width for G and model.d_width for D (the paper's 64); the loss train.loss with
    reg.gp (the paper: wasserstein, 10, train.n_critic 5). A conditional run (model.conditional)
    reads model.d_head (projection, or acgan with reg.aux_weight on its cross-entropy terms)."""

    method: Literal["wavegan", "specgan"] = "wavegan"
    # wavegan: D's activations shifted by up to this many samples (0: off)
    phase_shuffle: int = ranged(2, lambda v: 0 <= v <= 16, "0 to 16 samples")
    griffin_lim: int = ranged(16, lambda v: v >= 1, "an integer >= 1")  # specgan: iterations that recover the phase
    # clips in every grid (spectrograms in the image, the audio in a .wav beside it)
    grid_clips: int = ranged(8, lambda v: 1 <= v <= 32, "1 to 32")
    # model.d_head acgan: D's classifier also learns the digits of G's fakes, CE(aux(G(z, y)), y)
    # (Odena et al. 2017); false: of real clips only, so G must make clips a classifier of real
    # speech names, not a code that D and G agree on (Shu et al. 2017; Gong et al. 2019's TAC-GAN)
    aux_fakes: bool = True


SECTIONS = {"audio": AudioConfig}


def check(cfg, origin: str) -> None:
    """An audio run's D conditions by projection or by AC-GAN's classifier (`gankit.models.audio`):
    model.d_head says which; a plain run's D is plain."""
    if cfg.task != "audio":
        return
    m = cfg.model
    if m.conditional and m.d_head not in ("projection", "acgan"):
        raise GankitError(f"{origin}: model.d_head = {m.d_head!r}: a conditional audio run's D is the projection "
                          "discriminator or AC-GAN's critic + classifier; set model.d_head: projection (preset "
                          "specgan-cond-cpu) or acgan (preset specgan-acgan-cpu)")
    if not cfg.audio.aux_fakes and m.d_head != "acgan":
        raise GankitError(f"{origin}: audio.aux_fakes = false applies to AC-GAN's classifier, which "
                          f"model.d_head = {m.d_head!r} has not; set model.d_head: acgan (or leave aux_fakes true)")
    if not m.conditional and m.d_head != "plain":
        raise GankitError(f"{origin}: model.d_head = {m.d_head!r} needs model.conditional: true for an audio run "
                          "(or model.d_head: plain)")
