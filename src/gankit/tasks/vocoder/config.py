"""The vocoder task's config section (`vocoder:`)."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

from gankit.config import ranged
from gankit.errors import GankitError


def _ints(ok):
    return lambda v: len(v) >= 1 and all(isinstance(i, int) and ok(i) for i in v)


@dataclass(frozen=True)
class VocoderConfig:
    """The vocoder task (task: vocoder): HiFi-GAN (Kong et al. 2020), a log mel spectrogram ->
    its 16 kHz waveform. G's first width is model.g_width (V1 512, V2 128); D's base width
    model.d_width (the paper's 32: MPD 32 ... 1024). train.lr_g / lr_d are G's and the two
    discriminators' rates, train.betas Adam's (the paper: AdamW 2e-4, (0.8, 0.99), weight decay
    0.01 and an exponential decay per epoch, which gankit does not have: plain Adam, constant rate).
    g_arch vocos swaps G for Vocos (Siuzdak 2023, vocos.py): ConvNeXt blocks at the mel frame rate
    predicting an STFT, then an inverse STFT; its width is vocos_dim, not model.g_width."""

    # the mel spectrogram (mel.py): 80 bands, n_fft 1024, hop 256, window 1024, 0-8 kHz at 16 kHz
    n_mels: int = ranged(80, lambda v: 8 <= v <= 256, "8 to 256")
    n_fft: int = ranged(1024, lambda v: 64 <= v <= 4096, "64 to 4096")
    hop: int = ranged(256, lambda v: 16 <= v <= 1024, "16 to 1024")
    win: int = ranged(1024, lambda v: 16 <= v <= 4096, "16 to 4096")
    fmin: float = ranged(0.0, lambda v: 0 <= v < 8000, "0 to 8000 Hz")
    fmax: float = ranged(8000.0, lambda v: 0 < v <= 8000, "a frequency up to 8000 Hz (half of 16 kHz)")
    # G's transposed convolutions: strides (their product must be hop) and kernels (the paper's 2 x stride)
    upsample: tuple[int, ...] = ranged((8, 8, 2, 2), _ints(lambda i: i >= 1), "a list of integers >= 1")
    upsample_kernels: tuple[int, ...] = ranged((16, 16, 4, 4), _ints(lambda i: i >= 1), "a list of integers >= 1")
    res_kernels: tuple[int, ...] = ranged((3, 7, 11), _ints(lambda i: i % 2 == 1), "a list of odd integers")
    res_dilations: tuple[int, ...] = ranged((1, 3, 5), _ints(lambda i: i >= 1), "a list of integers >= 1")
    # G: HiFi-GAN (upsample ... res_dilations above, width model.g_width) or Vocos (the vocos_ fields)
    g_arch: Literal["hifigan", "vocos"] = "hifigan"
    vocos_dim: int = ranged(512, lambda v: 8 <= v <= 2048, "8 to 2048")  # ConvNeXt width (the paper's 512)
    vocos_layers: int = ranged(8, lambda v: 1 <= v <= 32, "1 to 32")  # ConvNeXt blocks (the paper's 8)
    vocos_mlp: int = ranged(1536, lambda v: 8 <= v <= 8192, "8 to 8192")  # pointwise MLP width (the paper's 3 x dim)
    # the predicted STFT's n_fft (Hann window of the same length): 4 x hop, the paper's; it need
    # not be the mel's n_fft, but must be >= 2 x hop (overlapping frames) and differ from hop by an
    # even number (the "same" framing cuts (n_fft - hop) / 2 from each end)
    vocos_n_fft: int = ranged(1024, lambda v: 32 <= v <= 4096, "32 to 4096")
    # the discriminators beside HiFi-GAN's MPD: its MSD (on the waveform at three scales) or
    # UnivNet's MRD (on magnitude spectrograms at three resolutions, as Vocos uses; nets.py)
    discriminators: Literal["mpd+msd", "mpd+mrd"] = "mpd+msd"
    # MRD's conv width (UnivNet's and Vocos's 32); null: model.d_width
    mrd_width: int | None = ranged(None, lambda v: v is None or 1 <= v <= 512, "1 to 512, or null (model.d_width)")
    segment: int = ranged(8192, lambda v: v >= 1024, "an integer >= 1024 (samples; a multiple of hop)")  # training crop
    mel_weight: float = ranged(45.0, lambda v: v >= 0, "a number >= 0")  # lambda_mel, the paper's 45
    fm_weight: float = ranged(2.0, lambda v: v >= 0, "a number >= 0")  # lambda_fm, the paper's 2
    # Parallel WaveGAN's multi-resolution STFT loss on G (phases.py), its weight; 0: off (HiFi-GAN's objective)
    stft_weight: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")
    # steps at the start that train G on the mel L1 alone, with no discriminator (0: the paper,
    # adversarial from the first step; Parallel WaveGAN waits 100k steps): on a CPU budget the
    # mel loss alone gets a usable G sooner, and the GAN steps then remove its buzz
    gan_start: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    # the step from which the discriminators train, on G's detached output, while G is still on
    # its spectral losses alone (until gan_start): G's first adversarial gradients then come from
    # discriminators that have learned real from vocoded, not from random ones; null: gan_start
    # (D and G's adversarial terms start together, the paper's)
    d_start: int | None = ranged(None, lambda v: v is None or v >= 0,
                                 "an integer >= 0, or null (vocoder.gan_start)")
    eval_clips: int = ranged(100, lambda v: 10 <= v <= 1000, "10 to 1000")  # held-out clips `gankit eval` scores
    grid_clips: int = ranged(4, lambda v: 1 <= v <= 16, "1 to 16")  # held-out clips in each grid (.png and .wav)


SECTIONS = {"vocoder": VocoderConfig}


def check(cfg, origin: str) -> None:
    v = cfg.vocoder
    if v.g_arch == "hifigan" and prod(v.upsample) != v.hop:
        raise GankitError(f"{origin}: vocoder.upsample {list(v.upsample)} multiplies to {prod(v.upsample)}; it must "
                          f"be vocoder.hop ({v.hop}), so that each mel frame becomes hop samples")
    if len(v.upsample_kernels) != len(v.upsample) or any(k < u for k, u in zip(v.upsample_kernels, v.upsample)) \
            or any((k - u) % 2 for k, u in zip(v.upsample_kernels, v.upsample)):
        raise GankitError(f"{origin}: vocoder.upsample_kernels {list(v.upsample_kernels)}: expected one kernel per "
                          f"stride of vocoder.upsample {list(v.upsample)}, each >= its stride and differing from it "
                          "by an even number (the paper's: 2 x stride)")
    if v.win > v.n_fft:
        raise GankitError(f"{origin}: vocoder.win {v.win} is longer than vocoder.n_fft {v.n_fft}; expected <= n_fft")
    if v.fmin >= v.fmax:
        raise GankitError(f"{origin}: vocoder.fmin {v.fmin} must be below vocoder.fmax {v.fmax}")
    if v.d_start is not None and v.d_start > v.gan_start:
        raise GankitError(f"{origin}: vocoder.d_start {v.d_start} is after vocoder.gan_start {v.gan_start}; expected "
                          "a step <= gan_start (the discriminators train from d_start, G against them from "
                          "gan_start), or null")
    if v.segment % v.hop:
        raise GankitError(f"{origin}: vocoder.segment {v.segment} is not a multiple of vocoder.hop {v.hop}")
    if v.segment > 16_384:
        raise GankitError(f"{origin}: vocoder.segment {v.segment} is longer than the clips (16384 samples)")
    if v.vocos_n_fft < 2 * v.hop or (v.vocos_n_fft - v.hop) % 2:
        raise GankitError(f"{origin}: vocoder.vocos_n_fft {v.vocos_n_fft} with vocoder.hop {v.hop}: expected an "
                          f"n_fft >= 2 x hop ({2 * v.hop}) that differs from the hop by an even number (e.g. "
                          f"{4 * v.hop}, the paper's 4 x hop)")
    if cfg.task == "vocoder" and v.g_arch == "hifigan" and cfg.model.g_width // 2 ** len(v.upsample) < 1:
        raise GankitError(f"{origin}: model.g_width {cfg.model.g_width} halves below 1 channel over "
                          f"{len(v.upsample)} upsampling stages; expected >= {2 ** len(v.upsample)}")
