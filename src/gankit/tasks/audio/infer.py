"""Using a trained audio run: clips from noise (and, for a conditional run, a class), written as WAV
files (`gankit sample RUN --wav DIR [--class K]`), and a digit said by a digit-conditional run
(`gankit speak RUN --digit 7`: `say_digit`)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import torch

from gankit import disk
from gankit.data.spectrogram import denormalise, griffin_lim
from gankit.data.speech import CLIP, DIGITS as WORDS, RATE
from gankit.errors import GankitError


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


def wav_out(out: str | Path, overwrite: bool) -> Path:
    """--out for one WAV file (`gankit speak`, `gankit vocode`), checked before any work: a .wav
    path in an existing folder, not replacing a file without --overwrite."""
    out = Path(out)
    if out.suffix.lower() != ".wav":
        raise GankitError(f"--out {out}: a WAV file is written; expected a path ending in .wav")
    if out.exists() and not overwrite:
        raise GankitError(f"--out {out}: already exists; choose another path or pass --overwrite")
    if not out.parent.is_dir():
        raise GankitError(f"--out {out}: the folder {out.parent} does not exist")
    return out


def write_wav(path: Path, clips: torch.Tensor, rate: int = RATE) -> Path:
    """float samples (1, T) or (T,) in [-1, 1] -> a 16-bit mono WAV, written atomically."""
    path = Path(path)
    with disk.atomic(path) as tmp:
        tmp.write_bytes(wav_bytes(clips, rate))
    return path


def labels(run, n: int, label: int | None = None, flag: str = "--class") -> torch.Tensor | None:
    """The classes of n clips: all `label`, or 0, 1, 2, ... in turn for a conditional run (so ten
    clips of spoken digits say each digit once); None for an unconditional run, which refuses a
    label in one line. `flag` names the option in the messages."""
    if not run.conditional:
        if label is not None:
            raise GankitError(f"{flag} {label}: {run.dir} is an unconditional audio run (its G draws clips from noise "
                              "with no say in the class); train one with model.conditional: true (preset "
                              "specgan-cond-cpu)")
        return None
    if label is None:
        return torch.arange(n) % run.n_classes
    if not 0 <= label < run.n_classes:
        names = run.data_meta.get("classes") or []
        raise GankitError(f"{flag} {label} is out of range; this run has classes 0..{run.n_classes - 1} "
                          f"({', '.join(map(str, names[:20]))})")
    return torch.full((n,), label)


@torch.no_grad()
def sample_audio(run, n: int, seed: int | None = None, label: int | None = None) -> torch.Tensor:
    """n clips (n, CLIP) float in [-1, 1] from an audio run; `label`: a conditional run's class
    (default: the classes in turn)."""
    run.need("audio", "audio sampling")
    y = labels(run, n, label)
    g = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()) if seed is None else seed)
    z = torch.randn(n, run.config.model.z_dim, generator=g).to(run.device)
    meta = run.data_meta
    mu, sigma = (torch.tensor(meta[k], device=run.device) for k in ("spec_mu", "spec_sigma"))
    out = run.G(z, None if y is None else y.to(run.device))
    return decode(run.config, out, mu, sigma, torch.Generator(device=run.device).manual_seed(0)).cpu()


def write_clips(run, n: int, out: Path, seed: int | None = None, label: int | None = None) -> list[Path]:
    """n clips as DIR/000000.wav ... (of class `label`, for a conditional run)."""
    clips = sample_audio(run, n, seed, label)
    return [write_wav(Path(out) / f"{i:06d}.wav", c) for i, c in enumerate(clips)]


def digit_class(run, digit: str | int) -> tuple[int, str]:
    """'7', 7 or 'seven' -> (the run's class index, the digit's word), for a conditional run whose
    classes are the ten digits (spoken-digits' words, or a folder's subfolders named 0-9 or by
    the words); a one-line refusal otherwise."""
    d = str(digit).strip().lower()
    word = WORDS[int(d)] if d.isdigit() and int(d) < 10 else d
    if word not in WORDS:
        raise GankitError(f"--digit {digit!r}: expected 0 to 9 or its English word (zero ... nine)")
    if not run.conditional:
        raise GankitError(f"--digit {digit}: {run.dir} is an unconditional audio run: its G draws clips from noise "
                          "with no say in which digit; train a digit-conditional one (gankit train --preset "
                          "specgan-cond-cpu) or say it through a vocoder run (gankit train --preset hifigan-cpu)")
    names = [str(c).lower() for c in run.data_meta.get("classes") or []]
    for name in (word, str(WORDS.index(word))):
        if name in names:
            return names.index(name), word
    raise GankitError(f"--digit {digit}: {run.dir}'s classes are {', '.join(names[:12])}, not the ten digits; "
                      "sample a class with gankit sample RUN --class K --wav DIR")


@torch.no_grad()
def hear(run, clip: torch.Tensor) -> tuple[str, float] | None:
    """What the bundled spoken-digit classifier hears in a float clip (CLIP,): (its digit's word,
    its probability), scored as `gankit eval` scores clips (the normalised log spectrogram image
    with the training clips' statistics, here the run's own); None for a run not trained on
    spoken-digits, whose classes the classifier does not know."""
    from gankit.data.speech import spectrogram_images
    from gankit.tasks.audio.evaluation import classify, scorer

    if not str(run.data_meta.get("name", "")).startswith("spoken-digits"):
        return None
    mu, sigma = (torch.tensor(run.data_meta[k]) for k in ("spec_mu", "spec_sigma"))
    p = classify(scorer(None, "cpu"), spectrogram_images(clip[None].cpu(), mu, sigma))[0]  # (10,)
    return WORDS[int(p.argmax())], float(p.max())


def say_digit(run, digit: str | int, out: str | Path, seed: int | None = None, overwrite: bool = False) -> dict:
    """One clip of `digit` from a digit-conditional audio run, written to OUT.wav: G(z, digit)
    makes it all (SpecGAN: a log spectrogram, made sound by Griffin-Lim; WaveGAN: the waveform),
    from noise and the digit's label alone: no text, no eSpeak NG at this step."""
    run.need("audio", "saying a digit")
    k, word = digit_class(run, digit)
    out = wav_out(out, overwrite)
    clip = sample_audio(run, 1, seed, k)[0]  # (CLIP,)
    write_wav(out, clip)
    return {"out": str(out), "digit": word, "class": k, "seconds": len(clip) / RATE, "method": run.config.audio.method,
            "griffin_lim": run.config.audio.griffin_lim, "heard": hear(run, clip)}
