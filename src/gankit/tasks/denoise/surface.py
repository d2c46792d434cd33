"""The denoising task's user surface: `gankit denoise` and `gankit.api.denoise`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import done, scan_flags, use_flags

USAGE = "gankit denoise {run} INPUT --out OUTPUT"
API = ("denoise",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows noisy | denoised | clean panels"}


def commands(sub) -> None:
    dn = sub.add_parser("denoise", help="remove noise from an image, a folder of images or a video with a denoising run",
                        description="Denoise INPUT (an image of any size, a folder of images, or a video frame by "
                        "frame at its frame rate; its audio kept) with a denoising run, in overlapping tiles so that "
                        "memory stays bounded. The run removes the noise it was trained on (denoise.noise).")
    dn.add_argument("run", metavar="RUN", help="denoising run directory, checkpoint .pt, or exported .safetensors")
    dn.add_argument("input", metavar="INPUT", help="image, folder of images, or video")
    dn.add_argument("--out", required=True, metavar="OUTPUT", help="image file, folder, or video (.mp4, .mov, .mkv)")
    dn.add_argument("--strict", action="store_true", help="refuse inputs whose channels differ from the run's")
    scan_flags(dn)
    use_flags(dn)
    dn.set_defaults(func=cmd_denoise)


def cmd_denoise(args: argparse.Namespace) -> int:
    r = denoise(args.run, args.input, args.out, strict=args.strict, overwrite=args.overwrite, device=args.device,
                ema=not args.no_ema, window=args.window, slice_format=args.slice_format)
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
