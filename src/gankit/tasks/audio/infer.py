"""Using a trained audio run: clips from noise, written as WAV files (`gankit sample RUN --wav DIR`)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import torch

from gankit import disk
from gankit.data.spectrogram import denormalise, griffin_lim
from gankit.data.speech import CLIP, RATE


def decode(cfg, out: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, generator=None) -> torch.Tensor:
    """G's output -> float clips (B, CLIP) in [-1, 1]: WaveGAN's as they are, SpecGAN's through
    Griffin-Lim (audio.griffin_lim iterations) from the de-normalised log magnitudes."""
    if cfg.audio.method == "wavegan":
        return out[:, 0]
    clips = griffin_lim(denormalise(out[:, 0], mu, sigma), CLIP, cfg.audio.griffin_lim, generator)
    return clips.clamp(-1, 1)


def wav_bytes(clips: torch.Tensor, rate: int = RATE) -> bytes:
    """float samples (..., T) in [-1, 1], all in a row -> a 16-bit mono WAV file's bytes."""
    x = (clips.reshape(-1).clamp(-1, 1) * 32767).round().to(torch.int16).cpu().numpy()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return buf.getvalue()


def joined(clips: torch.Tensor, gap_s: float = 0.25, rate: int = RATE) -> torch.Tensor:
    """Clips (B, T) one after another with `gap_s` of silence after each: (B (T + gap),)."""
    gap = torch.zeros(len(clips), int(rate * gap_s), device=clips.device, dtype=clips.dtype)
    return torch.cat([clips, gap], 1).flatten()


def write_wav(path: Path, clips: torch.Tensor, rate: int = RATE) -> Path:
    """float samples (1, T) or (T,) in [-1, 1] -> a 16-bit mono WAV, written atomically."""
    path = Path(path)
    with disk.atomic(path) as tmp:
        tmp.write_bytes(wav_bytes(clips, rate))
    return path


@torch.no_grad()
def sample_audio(run, n: int, seed: int | None = None) -> torch.Tensor:
    """n clips (n, CLIP) float in [-1, 1] from an audio run."""
    run.need("audio", "audio sampling")
    g = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()) if seed is None else seed)
    z = torch.randn(n, run.config.model.z_dim, generator=g).to(run.device)
    meta = run.data_meta
    mu, sigma = (torch.tensor(meta[k], device=run.device) for k in ("spec_mu", "spec_sigma"))
    return decode(run.config, run.G(z), mu, sigma, torch.Generator(device=run.device).manual_seed(0)).cpu()


def write_clips(run, n: int, out: Path, seed: int | None = None) -> list[Path]:
    """n clips as DIR/000000.wav ..."""
    clips = sample_audio(run, n, seed)
    return [write_wav(Path(out) / f"{i:06d}.wav", c) for i, c in enumerate(clips)]
