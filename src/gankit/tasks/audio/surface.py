"""The audio task's user surface: its `gankit sample` flag (the clips as WAV files; `--class K`, the
generation runs' flag, picks a conditional run's class), its runs' part of `gankit speak` (a
digit said by a digit-conditional run: `RUN_COMMANDS`), and `gankit.api.say_digit`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err

USAGE = ("gankit sample {run} --n 10 --wav clips/ (a digit-conditional run: --class 7, or gankit speak {run} "
         "--digit 7 --out seven.wav)")
API = ("say_digit",)
SHARED_SAMPLE_FLAGS = ("--class",)  # the generation runs' flag, the same meaning: a conditional run's class


def honest(method: str, griffin_lim: int) -> str:
    """What made the sound of a digit-conditional audio run's clip, in words."""
    made = (f"its log spectrogram, made sound by Griffin-Lim ({griffin_lim} iterations)" if method == "specgan"
            else "the waveform itself")
    return f"the run's {method} G made {made} from noise and the digit's label; no text, no eSpeak NG at this step"


def sample_flags(g) -> None:
    g.add_argument("--wav", metavar="DIR", help="write each clip to DIR/NNNNNN.wav (16-bit, 16 kHz; default 10 "
                   "clips); a conditional run's clips are its classes in turn, or all of class K with --class K")


def sample(args: argparse.Namespace, run) -> int:
    from gankit.tasks.audio.infer import write_clips

    if not args.wav:
        raise err("an audio run samples clips: gankit sample RUN --n 10 --wav DIR")
    label = getattr(args, "label", None)
    paths = write_clips(run, 10 if args.n is None else args.n, Path(args.wav), args.seed, label)
    which = "" if label is None else f", class {label} ({(run.data_meta.get('classes') or [label])[label]})"
    print(f"{args.wav}/ ({len(paths)} clips, 16 kHz{which})")
    return 0


def cmd_speak(args: argparse.Namespace, run) -> int:
    """`gankit speak RUN --digit N` with an audio run (the vocoder task's command hands over)."""
    if args.text:
        raise err(f"speak {args.text!r}: {args.run} is an audio run, which says one digit from its label, not text; "
                  "use --digit N (0-9), or a vocoder run for text (gankit train --preset hifigan-cpu)")
    if args.digit is None:
        raise err(f"{args.run} is an audio run: give the digit to say, gankit speak RUN --digit 7 --out seven.wav")
    from gankit.tasks.audio.infer import say_digit

    r = say_digit(run, args.digit, args.out, seed=getattr(args, "seed", None), overwrite=args.overwrite)
    heard = "" if r["heard"] is None else \
        f"; the bundled digit classifier hears {r['heard'][0]!r} (p {r['heard'][1]:.2f})"
    print(f"said {r['digit']!r} ({r['seconds']:.2f} s; {honest(r['method'], r['griffin_lim'])}{heard}): {r['out']}")
    return 0


RUN_COMMANDS = {"speak": cmd_speak}


# -- the Python API (gankit.api.say_digit) ---------------------------------------------------------


def say_digit(run_path: str | Path, digit, out: str | Path, seed: int | None = None, overwrite: bool = False,
              device: str = "cpu", ema: bool = True) -> dict:
    """One clip of `digit` (0-9 or its word) from a digit-conditional audio run, written to
    OUT.wav (`gankit.tasks.audio.infer.say_digit`): {"out", "digit", "class", "seconds",
    "method", "griffin_lim", "heard": (the classifier's digit, its probability) or None}."""
    from gankit.api import load
    from gankit.tasks.audio.infer import say_digit as _say

    return _say(load(run_path, device=device, ema=ema), digit, out, seed=seed, overwrite=overwrite)
