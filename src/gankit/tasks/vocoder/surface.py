"""The vocoder task's user surface: `gankit vocode`, `gankit speak`, and `gankit.api.vocode` /
`gankit.api.speak`. No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err, image_command, use_args, use_flags

USAGE = "gankit vocode {run} IN.wav --out OUT.wav; gankit speak {run} \"some text\" --out speech.wav"
API = ("vocode", "speak")
REPORT = {"scored": True, "grid": "each column: a held-out clip's mel (top) and its vocoded mel (bottom); the "
                                  "audio, real then vocoded, in the .wav beside each grid"}

HONEST = ("eSpeak NG makes the speech (words, timing, pitch); the vocoder run only turns its mel spectrogram "
          "into the waveform (the output line says whether that run was trained adversarially)")


def commands(sub) -> None:
    with image_command(sub, "vocode", func=cmd_vocode,
                       help="turn audio or a mel spectrogram into audio with a vocoder run",
                       description="Re-synthesise IN (an audio file, resampled to 16 kHz with a note, or a log mel "
                       "spectrogram .npy of shape (n_mels, frames)) with a vocoder run's generator; writes a 16-bit "
                       "16 kHz WAV.",
                       run_help="vocoder run directory, checkpoint .pt, or exported .safetensors",
                       input_metavar="IN", input_help="audio file (.wav, .flac, .mp3, .ogg) or mel spectrogram .npy",
                       out_metavar="OUT.wav") as vc:
        vc.add_argument("--strict", action="store_true",
                        help="refuse audio at another sample rate instead of resampling")

    sp = sub.add_parser("speak", help="text to speech: eSpeak NG's speech, re-synthesised by a vocoder run",
                        description=f"Say TEXT: {HONEST}. With --digit N, say that digit's word. With a "
                        "digit-conditional audio run (WaveGAN/SpecGAN, model.conditional: preset specgan-cond-cpu) "
                        "and --digit N, that run's G makes the clip from noise and the digit alone (no text, no "
                        "eSpeak NG); an unconditional audio run is refused.")
    sp.add_argument("run", metavar="RUN", help="vocoder run (or a digit-conditional audio run): directory, "
                    "checkpoint .pt, or exported .safetensors")
    sp.add_argument("text", metavar="TEXT", nargs="?", default=None, help="the words to say")
    sp.add_argument("--out", required=True, metavar="speech.wav")
    sp.add_argument("--voice", default="en-us", help="eSpeak NG voice (espeak-ng --voices), e.g. en-us+m3; "
                    "default en-us")
    sp.add_argument("--digit", metavar="N", help="say the digit N (0-9), instead of TEXT")
    sp.add_argument("--seed", type=int, help="an audio run's latent z (default: fresh each time)")
    use_flags(sp)
    sp.set_defaults(func=cmd_speak)


def cmd_vocode(args: argparse.Namespace) -> int:
    r = vocode(args.run, args.input, args.out, strict=args.strict, **use_args(args))
    for n in r["notes"]:
        print(f"note: {n}")
    print(f"vocoded {r['seconds']:.2f} s by {r['vocoder']}: {r['out']}")
    return 0


def cmd_speak(args: argparse.Namespace) -> int:
    from gankit.api import load
    from gankit.cli.tasks import run_command
    from gankit.tasks.vocoder.infer import render_speech, speak as _speak

    if args.digit is None and not (args.text or "").strip():
        render_speech(args.text or "")  # the one-line refusal of an empty text, before loading the run
    run = load(args.run, device=args.device, ema=not args.no_ema)
    other = run_command(run.task, "speak")  # a run of another task that can speak (a digit-conditional audio run)
    if other is not None:
        return other(args, run)
    if args.seed is not None:
        raise err(f"--seed: a vocoder run's speech is eSpeak NG's, re-synthesised deterministically; "
                  f"{args.run} takes no seed")
    r = _speak(run, args.text, args.out, voice=args.voice, digit=args.digit, overwrite=args.overwrite)
    print(f"said {r['text']!r} in {r['voice']} ({r['seconds']:.2f} s; {r['said_by']}): {r['out']}")
    return 0


# -- the Python API (gankit.api.vocode, gankit.api.speak) -------------------------------------------


def vocode(run_path: str | Path, src: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False,
           device: str = "cpu", ema: bool = True) -> dict:
    """Vocode an audio file or a mel .npy with a vocoder run (`gankit.tasks.vocoder.infer.vocode_path`)."""
    from gankit.api import load
    from gankit.tasks.vocoder.infer import vocode_path

    return vocode_path(load(run_path, device=device, ema=ema), src, out, strict=strict, overwrite=overwrite)


def speak(run_path: str | Path, text: str | None, out: str | Path, voice: str = "en-us", digit=None,
          overwrite: bool = False, device: str = "cpu", ema: bool = True) -> dict:
    """Text (or a digit) -> a WAV: eSpeak NG's speech re-synthesised by the run's vocoder
    (`gankit.tasks.vocoder.infer.speak`)."""
    from gankit.api import load
    from gankit.tasks.vocoder.infer import render_speech, speak as _speak

    if digit is None and not (text or "").strip():
        render_speech(text or "")  # the one-line refusal of an empty text, before loading the run
    return _speak(load(run_path, device=device, ema=ema), text, out, voice=voice, digit=digit, overwrite=overwrite)
