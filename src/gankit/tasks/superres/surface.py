"""The super-resolution task's user surface: `gankit superres` and `gankit.api.superres`. No torch
at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import done, image_command, use_args

USAGE = "gankit superres {run} INPUT --out OUTPUT"
API = ("superres",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows input | output | target panels"}


def commands(sub) -> None:
    with image_command(sub, "superres", func=cmd_superres, scan=True,
                       help="upscale an image, a folder of images or a video with a super-resolution run",
                       description="Upscale INPUT (an image of any size, a folder of images, or a video frame by "
                       "frame at its frame rate; its audio kept) by the run's factor, in overlapping tiles so "
                       "that memory stays bounded.",
                       run_help="super-resolution run directory, checkpoint .pt, or exported .safetensors",
                       input_help="image, folder of images, or video",
                       out_help="image file, folder, or video (.mp4, .mov, .mkv)") as sr:
        sr.add_argument("--scale", type=int,
                        help="the run's factor (refused if it differs: a run upscales by what it learned)")
        sr.add_argument("--tile", type=int, default=128, help="LR tile side (default 128; smaller: less memory)")
        sr.add_argument("--overlap", type=int, default=16, help="LR pixels of context around each tile (default 16)")
        sr.add_argument("--strict", action="store_true", help="refuse inputs whose channels differ from the run's")


def cmd_superres(args: argparse.Namespace) -> int:
    r = superres(args.run, args.input, args.out, args.scale, args.tile, args.overlap, strict=args.strict,
                 **use_args(args))
    print(f"upscaled {done(r)} x{r['scale']}: {r['out']}")
    return 0


# -- the Python API (gankit.api.superres) ----------------------------------------------------------


def superres(run_path: str | Path, src: str | Path, out: str | Path, scale: int | None = None, tile: int = 128,
             overlap: int = 16, strict: bool = False, overwrite: bool = False, device: str = "cpu",
             ema: bool = True, window: str | None = None, slice_format: str | None = None) -> dict:
    """Upscale an image, a folder or a video with a super-resolution run, tile by tile (see
    `gankit.tasks.superres.infer.superres_path`)."""
    from gankit.api import load
    from gankit.tasks.superres.infer import superres_path

    from gankit.media.scans import ScanOptions

    run = load(run_path, device=device, ema=ema)
    return superres_path(run, src, out, scale, tile, overlap, strict=strict, overwrite=overwrite,
                         scan=ScanOptions(window, slice_format))
