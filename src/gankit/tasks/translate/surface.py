"""The translation task's user surface: `gankit translate` and `gankit.api.translate`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import done, image_command, use_args

USAGE = "gankit translate {run} INPUT --out OUTPUT"
API = ("translate",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows input | output | target panels"}


def commands(sub) -> None:
    with image_command(sub, "translate", func=cmd_translate, scan=True,
                       help="translate an image, a folder of images or a video with a translation run",
                       description="Translate INPUT (an image, a folder of images, or a video, frame by frame "
                       "at its frame rate; its audio kept) with a pix2pix or CycleGAN run. Inputs of another "
                       "size or channel count are converted, with one line saying so (--strict refuses them).",
                       run_help="translation run directory, checkpoint .pt, or exported .safetensors",
                       input_help="image, folder of images, or video (.mp4, .mov, .mkv, .avi, .webm)",
                       out_help="image file, folder (same relative names), or video (.mp4, .mov, .mkv)") as tr:
        tr.add_argument("--direction", choices=("AtoB", "BtoA"),
                        help="CycleGAN runs: which generator (default AtoB); pix2pix runs: their training direction")
        tr.add_argument("--strict", action="store_true",
                        help="refuse inputs whose size or channels differ from the run's")


def cmd_translate(args: argparse.Namespace) -> int:
    r = translate(args.run, args.input, args.out, args.direction, strict=args.strict, **use_args(args))
    print(f"translated {done(r)} ({r['direction']}): {r['out']}")
    return 0


# -- the Python API (gankit.api.translate) ---------------------------------------------------------


def translate(run_path: str | Path, src: str | Path, out: str | Path, direction: str | None = None,
              strict: bool = False, overwrite: bool = False, device: str = "cpu", ema: bool = True,
              window: str | None = None, slice_format: str | None = None) -> dict:
    """Translate an image, a folder or a video with a translation run (see
    `gankit.tasks.translate.infer.translate_path`)."""
    from gankit.api import load
    from gankit.tasks.translate.infer import translate_path

    from gankit.media.scans import ScanOptions

    run = load(run_path, device=device, ema=ema)
    return translate_path(run, src, out, direction, strict=strict, overwrite=overwrite,
                          scan=ScanOptions(window, slice_format))
