"""The frame-interpolation task's user surface: `gankit interpolate` and `gankit.api.interpolate`.
No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err, image_command, use_args

USAGE = "gankit interpolate {run} VIDEO --out OUTPUT --factor 2"
API = ("interpolate",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows input | output | target panels"}


def commands(sub) -> None:
    with image_command(sub, "interpolate", func=cmd_interpolate,
                       help="raise a video's frame rate, or replace damaged frames, with an interpolation run",
                       description="With --factor N, write N - 1 new frames between every two frames (the frame "
                       "rate becomes N x the input's); with --fill --frames LIST, replace the listed frames "
                       "(0-based) by predictions from their neighbours. The audio is kept.",
                       run_help="interpolation run directory, checkpoint .pt, or exported .safetensors",
                       input_metavar="VIDEO", out_metavar="VIDEO", out_help="output video (.mp4, .mov, .mkv)") as ip:
        ip.add_argument("--factor", type=int, help="2, 4 or 8: the new frame rate, as a multiple of the input's")
        ip.add_argument("--fill", action="store_true", help="replace the frames listed by --frames")
        ip.add_argument("--frames", metavar="LIST", help="with --fill: frame numbers, e.g. 10,11,40")
        ip.add_argument("--strict", action="store_true", help="refuse frames whose channels differ from the run's")


def cmd_interpolate(args: argparse.Namespace) -> int:
    fill = None
    if args.fill or args.frames:
        if not (args.fill and args.frames):
            raise err("--fill and --frames go together: --fill --frames 10,11,40")
        try:
            fill = [int(v) for v in args.frames.split(",") if v.strip()]
        except ValueError:
            raise err(f"--frames {args.frames!r}: expected frame numbers separated by commas, e.g. 10,11,40") from None
    r = interpolate(args.run, args.input, args.out, args.factor, fill, strict=args.strict, **use_args(args))
    done = f"filled frames {','.join(map(str, r['filled']))}" if r["filled"] else f"x{r['factor']} frame rate"
    print(f"{done}: {r['n']} frames at {r['fps']:g} fps: {r['out']}")
    return 0


# -- the Python API (gankit.api.interpolate) -------------------------------------------------------


def interpolate(run_path: str | Path, src: str | Path, out: str | Path, factor: int | None = None,
                fill: list[int] | None = None, strict: bool = False, overwrite: bool = False, device: str = "cpu",
                ema: bool = True) -> dict:
    """Raise a video's frame rate (`factor`) or replace its damaged frames (`fill`) with a
    frame-interpolation run (see `gankit.tasks.interpolate.infer.interpolate_video`)."""
    from gankit.api import load
    from gankit.tasks.interpolate.infer import interpolate_video

    run = load(run_path, device=device, ema=ema)
    return interpolate_video(run, src, out, factor, fill, strict=strict, overwrite=overwrite)
