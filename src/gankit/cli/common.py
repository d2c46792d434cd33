"""What the `gankit` commands share: the set-up of every command that applies a run to a user's
files (`image_command`, and `use_args` to read its shared flags back), the convenience flags as
config overrides, the command line for the record, the end-of-training summary, and the one-line
error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def use_flags(p: argparse.ArgumentParser) -> None:
    """The flags every command that applies a trained run to a user's files shares."""
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator(s), not the EMA")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))


def scan_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the commands that take a medical scan as INPUT (`gankit.media.scans`)."""
    p.add_argument("--window", metavar="W", help="a scan's window to [0, 1]: file (default: the scan's own, else "
                   "auto), auto, soft-tissue, lung, bone, brain, or CENTRE,WIDTH")
    p.add_argument("--slice-format", choices=("dicom", "png"), help="a scan written to a folder: a DICOM series "
                   "(default for a DICOM input) or one PNG per slice (default for a NIfTI input)")


@contextmanager
def image_command(sub, name: str, *, help: str, description: str, func: Callable[[argparse.Namespace], int],
                  run_help: str, input_help: str | None = None, out_help: str | None = None,
                  input_metavar: str = "INPUT", out_metavar: str = "OUTPUT",
                  scan: bool = False) -> Iterator[argparse.ArgumentParser]:
    """`gankit NAME RUN INPUT --out OUTPUT`: a command that applies a trained run to a user's files.

        with image_command(sub, "denoise", help=..., description=..., func=cmd_denoise, run_help=...,
                           input_help=..., out_help=..., scan=True) as p:
            p.add_argument("--strict", ...)   # the command's own flags only

    Adds the subcommand with RUN, INPUT (`args.input`) and the required --out; the block adds the
    command's own flags after them; on leaving it, the shared flags go last, so every such command's
    help reads alike: the scan flags when INPUT may be a medical scan (`scan`), then --overwrite,
    --no-ema and --device (`use_flags`). `func` handles the command; it reads the shared flags back
    with `use_args(args)`."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("run", metavar="RUN", help=run_help)
    p.add_argument("input", metavar=input_metavar, help=input_help)
    p.add_argument("--out", required=True, metavar=out_metavar, help=out_help)
    yield p
    if scan:
        scan_flags(p)
    use_flags(p)
    p.set_defaults(func=func)


def use_args(args: argparse.Namespace) -> dict:
    """The shared flags' values as the Python API's keywords: overwrite, device and ema (`use_flags`),
    plus window and slice_format where the command has the scan flags (`scan_flags`)."""
    kw = {"overwrite": args.overwrite, "device": args.device, "ema": not args.no_ema}
    if hasattr(args, "slice_format"):
        kw.update(window=args.window, slice_format=args.slice_format)
    return kw


def done(r: dict) -> str:
    """'1 image' / 'N images' / 'N slices' / 'N frames at F fps' for what an inference command wrote."""
    return {"image": "1 image", "folder": f"{r['n']} images", "scan": f"{r['n']} scan slices"}.get(
        r["kind"], f"{r['n']} frames at {r.get('fps', 0):g} fps")


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The convenience flags as `--set` strings, so one code path validates everything."""
    flags = {"data.source": args.data, "train.steps": args.steps, "train.batch": args.batch, "seed": args.seed,
             "device": args.device, "eval.every": args.eval_every,
             "train.max_seconds": getattr(args, "max_seconds", None),
             "data.resolution": getattr(args, "resolution", None)}
    out = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.no_progress:
        out.append("log.progress=false")
    if args.strict_data:
        out.append("data.strict=true")
    if getattr(args, "profile", None) is not None:
        out.append(f"log.profile={args.profile}")
    return out


def command_line(args: argparse.Namespace) -> str:
    """The command line as the user typed it, for train.log and the report."""
    import shlex

    return shlex.join(["gankit", *args.argv])


def report_run(run) -> None:
    if run is None:  # a data-parallel rank other than 0: rank 0 reports
        return
    if run.interrupted:
        print(f"gankit: stopped by {run.interrupted} at step {run.step} of {run.config.train.steps}; "
              f"checkpoint written. Resume with: gankit train --resume {run.dir}", file=sys.stderr)
    print(f"samples:   {run.last_grid}")
    print(f"loss plot: {run.loss_plot}")
    print(f"animation: {run.animation}")
    if (run.dir / "metrics.png").exists():
        print(f"metrics:   {run.dir / 'metrics.png'}")
    if (run.dir / "report.html").exists():
        print(f"report:    {run.dir / 'report.html'}")
    if (run.dir / "checkpoints" / "best.pt").exists():
        print(f"best:      {run.dir / 'checkpoints' / 'best.pt'} (the best evaluation by the task's headline metric: "
              "metrics.png)")
    from gankit.cli.tasks import usage

    print(f"run:       {run.dir}  ({usage(run.task, run.dir)})")


def num(v) -> str:
    v = v.item()
    return f"{v:g}" if isinstance(v, float) else str(v)


def err(msg: str):
    from gankit.errors import GankitError

    return GankitError(msg)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))
