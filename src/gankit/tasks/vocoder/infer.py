"""Using a trained vocoder: a user's audio or mel spectrogram -> audio (`gankit vocode`), and
text -> speech (`gankit speak`), where eSpeak NG makes the speech from the text and the vocoder
only turns that speech's mel spectrogram back into a waveform.

Every output is a 16-bit mono WAV at 16 kHz written atomically (`gankit.disk`): a bad input
leaves no file behind.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from gankit.data.speech import AUDIO_SUFFIXES, DIGITS, RATE, espeak, read_audio
from gankit.errors import GankitError
from gankit.tasks.vocoder.mel import MelSpec, mel, spec_of


def read_mel_npy(path: Path, spec: MelSpec) -> torch.Tensor:
    """A mel spectrogram saved with numpy: (n_mels, frames) or (1, n_mels, frames), finite
    floats, this module's log mel (`gankit.tasks.vocoder.mel.mel`) -> (1, n_mels, frames)."""
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GankitError(f"{path}: not a readable .npy array ({e})") from None
    shape = tuple(a.shape)
    if a.ndim == 3 and shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or a.shape[0] != spec.n_mels or a.shape[1] < 1:
        raise GankitError(f"{path}: a mel spectrogram of shape {shape}; this run expects ({spec.n_mels}, frames) or "
                          f"(1, {spec.n_mels}, frames): log mel, {spec.n_mels} bands, hop {spec.hop} at {RATE} Hz")
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
        raise GankitError(f"{path}: the mel spectrogram must hold finite floats (got {a.dtype}"
                          f"{'' if not np.issubdtype(a.dtype, np.floating) else ' with NaN or inf'})")
    return torch.from_numpy(a.astype(np.float32))[None]


def read_wave(path: Path, strict: bool, notes: list[str]) -> torch.Tensor:
    """An audio file -> float samples (T,) at 16 kHz (resampled with a note, or refused with strict)."""
    x, own = read_audio(path, RATE)
    if own != RATE:
        if strict:
            raise GankitError(f"{path}: audio at {own} Hz; this vocoder works at {RATE} Hz (--strict refuses "
                              "resampling; drop --strict to resample it)")
        notes.append(f"{path.name}: resampled from {own} Hz to {RATE} Hz")
    if len(x) == 0:
        raise GankitError(f"{path}: the audio file holds no samples")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def mel_of_wave(x: torch.Tensor, spec: MelSpec) -> torch.Tensor:
    """Samples (T,) -> (1, n_mels, ceil(T / hop)): zero-padded to whole hops (and past the
    reflect padding's n_fft), so the vocoded clip covers the input; cut back by the caller."""
    t = max(len(x), spec.n_fft)
    t = -(-t // spec.hop) * spec.hop
    return mel(torch.nn.functional.pad(x, (0, t - len(x)))[None], spec)


def adversarial_steps(run) -> int:
    """How many of the run's own steps were adversarial: the steps past vocoder.gan_start (the
    first gan_start steps train G on spectral losses alone, with no discriminator)."""
    return max(0, run.step - run.config.vocoder.gan_start)


def what_vocodes(run) -> str:
    """Who turns the mel into the waveform, true for this run: a GAN only when the run took
    adversarial steps. Weights a run started from (train.init) are named, not counted: their
    training is the other run's to describe."""
    from gankit.tasks.vocoder.task import ARCH_NAMES

    cfg, n = run.config, adversarial_steps(run)
    arch = ARCH_NAMES[cfg.vocoder.g_arch]
    start = f"; started from the weights of {cfg.train.init}" if cfg.train.init else ""
    if n:
        return f"a GAN vocoder ({arch}, {n:,} adversarial step{'s' if n > 1 else ''} of {run.step:,}{start})"
    return f"a {arch} vocoder trained on spectral losses only (no adversarial steps{start})"


def honest_line(run) -> str:
    """What `gankit speak` says made its output."""
    return (f"eSpeak NG makes the speech (words, timing, pitch); {what_vocodes(run)} only turns its mel "
            "spectrogram into the waveform")


@torch.no_grad()
def vocode_mel(run, m: torch.Tensor) -> torch.Tensor:
    """Log mel (1, n_mels, F) -> samples (F hop,) float on the CPU, in [-1, 1]."""
    run.need("vocoder", "vocoding")
    return run.nets["G"](m.to(run.device))[0, 0].clamp(-1, 1).cpu()


def vocode_path(run, src: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False) -> dict:
    """IN.wav (any audio file PyAV reads) or mel.npy -> OUT.wav through the run's G."""
    from gankit.tasks.audio.infer import wav_out, write_wav

    run.need("vocoder", "vocoding")
    src, out = Path(src), wav_out(out, overwrite)
    spec = spec_of(run.config)
    notes: list[str] = []
    if not src.is_file():
        raise GankitError(f"{src}: no such file; expected an audio file ({', '.join(AUDIO_SUFFIXES)}) or a mel .npy")
    if src.suffix.lower() == ".npy":
        m = read_mel_npy(src, spec)
        y = vocode_mel(run, m)
    else:
        x = read_wave(src, strict, notes)
        y = vocode_mel(run, mel_of_wave(x, spec))[:len(x)]
    write_wav(out, y)
    return {"out": str(out), "seconds": len(y) / RATE, "notes": notes, "vocoder": what_vocodes(run)}


def render_speech(text: str, voice: str = "en-us", speed: int = 160) -> torch.Tensor:
    """eSpeak NG's rendering of `text` in `voice` -> float samples (T,) at 16 kHz."""
    if not text.strip():
        raise GankitError("speak: the text is empty; give the words to say, e.g. gankit speak RUN \"hello there\"")
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "speech.wav"
        r = subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-w", str(f), "--", text],
                           capture_output=True, text=True)
        if r.returncode != 0 or not f.is_file():
            said = " ".join((r.stderr or r.stdout).split())[:200]
            raise GankitError(f"--voice {voice!r}: espeak-ng refused it ({said}); list voices with espeak-ng --voices, "
                              "e.g. en-us, en-gb, en-us+m3, en-gb+f2")
        x, _ = read_audio(f, RATE)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def digit_text(digit: str | int) -> str:
    """'7', 7 or 'seven' -> 'seven'."""
    d = str(digit).strip().lower()
    if d.isdigit() and int(d) < 10:
        return DIGITS[int(d)]
    if d in DIGITS:
        return d
    raise GankitError(f"--digit {digit!r}: expected 0 to 9 or its English word (zero ... nine)")


def speak(run, text: str | None, out: str | Path, voice: str = "en-us", digit: str | int | None = None,
          overwrite: bool = False) -> dict:
    """Text -> OUT.wav: eSpeak NG renders the text (the speech: words, timing, pitch, all of it),
    its log mel is taken, and the run's G re-synthesises the waveform from that mel. An audio
    (WaveGAN/SpecGAN) run is refused here: a digit-conditional one says a digit through its own
    task (`gankit.tasks.audio.infer.say_digit`, which `gankit speak` hands it to)."""
    from gankit.tasks.audio.infer import wav_out, write_wav

    if digit is not None:
        if text:
            raise GankitError("speak: give the text or --digit, not both")
        text = digit_text(digit)
    if run.task == "audio":
        raise GankitError(f"{run.dir}: an audio run (WaveGAN/SpecGAN) re-synthesises no speech, so it cannot say "
                          f"{text!r} here; a digit-conditional one says a digit itself (gankit speak RUN --digit 7, "
                          "gankit.api.say_digit), and text needs a vocoder run (gankit train --preset hifigan-cpu)")
    run.need("vocoder", "speak")
    out = wav_out(out, overwrite)
    x = render_speech(text or "", voice)
    spec = spec_of(run.config)
    y = vocode_mel(run, mel_of_wave(x, spec))[:len(x)]
    write_wav(out, y)
    return {"out": str(out), "seconds": len(y) / RATE, "text": text, "voice": voice, "said_by": honest_line(run)}
