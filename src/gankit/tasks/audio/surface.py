"""The audio task's user surface: its `gankit sample` flag (the clips as WAV files). No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err

USAGE = "gankit sample {run} --n 10 --wav clips/"


def sample_flags(g) -> None:
    g.add_argument("--wav", metavar="DIR", help="write each clip to DIR/NNNNNN.wav (16-bit, 16 kHz; default 10 clips)")


def sample(args: argparse.Namespace, run) -> int:
    from gankit.tasks.audio.infer import write_clips

    if not args.wav:
        raise err("an audio run samples clips: gankit sample RUN --n 10 --wav DIR")
    paths = write_clips(run, 10 if args.n is None else args.n, Path(args.wav), args.seed)
    print(f"{args.wav}/ ({len(paths)} clips, 16 kHz)")
    return 0
