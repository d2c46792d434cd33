"""The denoising task's user surface: `gankit denoise` and `gankit.api.denoise`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import done, image_command, use_args

USAGE = "gankit denoise {run} INPUT --out OUTPUT"
API = ("denoise",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows noisy | denoised | clean panels"}


def commands(sub) -> None:
    with image_command(sub, "denoise", func=cmd_denoise, scan=True,
                       help="remove noise from an image, a folder of images or a video with a denoising run",
                       description="Denoise INPUT (an image of any size, a folder of images, or a video frame by "
                       "frame at its frame rate; its audio kept) with a denoising run, in overlapping tiles so that "
                       "memory stays bounded. The run removes the noise it was trained on (denoise.noise).",
                       run_help="denoising run directory, checkpoint .pt, or exported .safetensors",
                       input_help="image, folder of images, or video",
                       out_help="image file, folder, or video (.mp4, .mov, .mkv)") as dn:
        dn.add_argument("--strict", action="store_true", help="refuse inputs whose channels differ from the run's")


def cmd_denoise(args: argparse.Namespace) -> int:
    r = denoise(args.run, args.input, args.out, strict=args.strict, **use_args(args))
    print(f"denoised {done(r)} (trained on {r['noise']}): {r['out']}")
    return 0


# -- the Python API (gankit.api.denoise) ------------------------------------------------------------


def denoise(run_path: str | Path, src: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False,
            device: str = "cpu", ema: bool = True, window: str | None = None,
            slice_format: str | None = None) -> dict:
    """Denoise an image, a folder or a video with a denoising run (see
    `gankit.tasks.denoise.infer.denoise_path`; in memory: `denoise_images(run, x)`)."""
    from gankit.api import load
    from gankit.tasks.denoise.infer import denoise_path

    from gankit.media.scans import ScanOptions

    run = load(run_path, device=device, ema=ema)
    return denoise_path(run, src, out, strict=strict, overwrite=overwrite, scan=ScanOptions(window, slice_format))
