"""Speech data for the audio task (issue 17, part 2): spoken digits made on this machine, and a
user's folder of audio files. Clips are mono int16 at one sample rate, `CLIP` samples long.

    spoken-digits     "zero" to "nine" spoken by the eSpeak NG synthesiser (Debian's espeak-ng,
                      installed by `make` as root; GPL-3, its voices' licences in the package):
                      the 7 English accents x 20 voice variants, speeds 120-220 words/min and
                      pitches 20-80, drawn by a fixed seed. The test split's clips use 4 voice
                      variants the training split never hears (f4, m6, m7, klatt4), so scores on
                      it are on unseen voices. Each clip: synthesised at 22,050 Hz, resampled to
                      16 kHz (PyAV's resampler), leading and trailing silence trimmed (|x| under
                      1% of the peak), peak-normalised to 0.9, centred in 16,384 samples (1.02 s,
                      WaveGAN's length) and stored as int16. 500 clips per digit for training,
                      100 for test; built once (about two minutes on 2 cores) and cached in
                      $GANKIT_CACHE as .npz, with the espeak-ng version that made them.
    a folder          WAV, FLAC, MP3, OGG files, with class subfolders (one per class) or flat;
                      another sample rate is resampled to 16 kHz and counted in the notes;
                      stereo is averaged to mono; clips longer than 16,384 samples are centre-cut.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gankit.errors import GankitError
from gankit.util import cache_dir, save_npz_atomic

RATE = 16_000
CLIP = 16_384
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m8", "f1", "f2", "f3", "f5", "klatt", "klatt2", "klatt3",
                  "croak", "whisper", "john", "linda", "steph", "paul", "robert")
TEST_VARIANTS = ("f4", "m6", "m7", "klatt4")
PER_DIGIT = {"train": 500, "test": 100}
SEED = 2026
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass
class AudioData:
    """Clips (N, CLIP) int16 and labels (N,) or None, at `rate`."""

    name: str
    x: np.ndarray
    y: np.ndarray | None
    classes: list[str]
    rate: int = RATE
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)


def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise GankitError("data source 'spoken-digits': espeak-ng is not installed; apt-get install espeak-ng "
                          "(`make` does this as root)")
    return exe


def espeak_version() -> str:
    out = subprocess.run([espeak(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("text-to-speech:")[-1].split("Data")[0].strip()


def recipe(split: str, per_digit: int | None = None) -> list[tuple[int, str, int, int]]:
    """The (digit, voice, speed, pitch) of every clip of `split`, in order: a fixed draw."""
    rng = random.Random(f"{SEED}-{split}")
    variants = TRAIN_VARIANTS if split == "train" else TEST_VARIANTS
    out = []
    for d in range(10):
        for _ in range(per_digit or PER_DIGIT[split]):
            out.append((d, f"{rng.choice(ACCENTS)}+{rng.choice(variants)}", rng.randint(120, 220), rng.randint(20, 80)))
    return out


def read_audio(path: str | Path, rate: int = RATE) -> tuple[np.ndarray, int]:
    """(mono float32 samples at `rate`, the file's own rate): decoded and resampled by PyAV."""
    import av

    try:
        with av.open(str(path)) as c:
            streams = [s for s in c.streams if s.type == "audio"]
            if not streams:
                raise GankitError(f"{path}: no audio stream")
            own = streams[0].rate
            res = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = []
            for frame in c.decode(streams[0]):
                chunks += [f.to_ndarray().reshape(-1) for f in res.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise GankitError(f"{path}: not a readable audio file ({e}); expected {', '.join(AUDIO_SUFFIXES)}") from None
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), own


def to_clip(x: np.ndarray, length: int = CLIP, trim: float = 0.01, peak: float = 0.9) -> np.ndarray:
    """float samples -> int16 (length,): silence under `trim` x the peak cut from both ends,
    scaled to `peak`, centred (zero-padded, or centre-cut when longer)."""
    m = float(np.abs(x).max()) if len(x) else 0.0
    if m == 0:
        return np.zeros(length, np.int16)
    loud = np.flatnonzero(np.abs(x) >= trim * m)
    x = x[loud[0]:loud[-1] + 1] * (peak / m)
    if len(x) > length:
        start = (len(x) - length) // 2
        x = x[start:start + length]
    out = np.zeros(length, np.float32)
    off = (length - len(x)) // 2
    out[off:off + len(x)] = x
    return np.round(out * 32767).astype(np.int16)


def synthesise(word: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    """One clip of `word` (int16, CLIP samples at RATE)."""
    f = tmp / f"{word}-{voice}-{speed}-{pitch}.wav"
    subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(f), word],
                   check=True, capture_output=True)
    x, _ = read_audio(f)
    f.unlink()
    return to_clip(x)


def build_spoken_digits(split: str, per_digit: int | None = None, workers: int = 2) -> AudioData:
    """Synthesise `split` (see the module docstring); deterministic for one espeak-ng version."""
    todo = recipe(split, per_digit)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        clips = list(pool.map(lambda r: synthesise(DIGITS[r[0]], r[1], r[2], r[3], Path(tmp)), todo))
    version = espeak_version()
    return AudioData(f"spoken-digits:{split}" if split == "test" else "spoken-digits", np.stack(clips),
                     np.array([r[0] for r in todo], np.int64), list(DIGITS),
                     notes=[f"made by espeak-ng {version}: {len(todo)} clips, {len(set(r[1] for r in todo))} voices"])


def spoken_digits(split: str = "train") -> AudioData:
    """The cached set, built on first use."""
    path = cache_dir() / f"spoken-digits-v1-{split}.npz"
    if path.is_file():
        z = np.load(path)
        return AudioData(f"spoken-digits:{split}" if split == "test" else "spoken-digits", z["x"], z["y"],
                         list(DIGITS), notes=[str(z["note"])])
    data = build_spoken_digits(split)
    save_npz_atomic(path, {"x": data.x, "y": data.y, "note": np.array(data.notes[0])})
    return data


def train_spectrogram_stats() -> tuple:
    """SpecGAN's per-frequency (mu, sigma) (128,) over the spoken-digits training clips: the one
    normalisation every spectrogram image of spoken digits uses (classifier, references, samples)."""
    import torch

    from gankit.data.spectrogram import bin_stats, log_spectrogram

    path = cache_dir() / "spoken-digits-v1-spec-stats.npz"
    if path.is_file():
        z = np.load(path)
        return torch.from_numpy(z["mu"]), torch.from_numpy(z["sigma"])
    x = torch.from_numpy(spoken_digits("train").x)
    spec = torch.cat([log_spectrogram(c.float() / 32767.0) for c in x.split(512)])
    mu, sigma = bin_stats(spec)
    save_npz_atomic(path, {"mu": mu.numpy(), "sigma": sigma.numpy()})
    return mu, sigma


def spectrogram_images(clips, mu, sigma):
    """float clips (B, T) in [-1, 1] -> uint8 (B, 1, 128, 128) images of their normalised log
    spectrograms (low frequencies at the bottom): how the image metrics see audio."""
    from gankit.data.spectrogram import log_spectrogram, normalise, to_image

    return to_image(normalise(log_spectrogram(clips), mu, sigma)[:, None])


def load_audio_folder(path: str | Path) -> AudioData:
    """A user's audio files: class subfolders or flat; resampled to RATE and cut to CLIP."""
    root = Path(path).expanduser()
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
    if not files:
        raise GankitError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    labelled = all(f.parent != root for f in files)
    classes = sorted({f.relative_to(root).parts[0] for f in files}) if labelled else []
    clips, labels, resampled, long = [], [], 0, 0
    for f in files:
        x, own = read_audio(f)
        resampled += own != RATE
        long += len(x) > CLIP
        clips.append(to_clip(x))
        if labelled:
            labels.append(classes.index(f.relative_to(root).parts[0]))
    notes = [f"{len(files)} clips" + (f" in {len(classes)} classes" if classes else "")]
    if resampled:
        notes.append(f"{resampled} files resampled to {RATE} Hz")
    if long:
        notes.append(f"{long} clips longer than {CLIP} samples were centre-cut")
    return AudioData(str(root), np.stack(clips), np.array(labels, np.int64) if labelled else None, classes,
                     notes=notes)


def load_audio(source: str) -> AudioData:
    if source in ("spoken-digits", "spoken-digits:train"):
        return spoken_digits("train")
    if source == "spoken-digits:test":
        return spoken_digits("test")
    if Path(source).expanduser().is_dir():
        return load_audio_folder(source)
    raise GankitError(f"unknown audio source {source!r}; expected spoken-digits, spoken-digits:test, or a folder "
                      f"of audio files ({', '.join(AUDIO_SUFFIXES)})")
