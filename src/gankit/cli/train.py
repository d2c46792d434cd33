"""`gankit train`: a run from a preset, a config file and flags; `--resume`; `--nproc` (torchrun)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gankit.cli.common import command_line, err, flag_overrides, rank, report_run


def add(sub) -> None:
    t = sub.add_parser("train", help="train a GAN", description="Train a GAN. Config = preset or "
                       "--config file, then the flags below, then --set overrides (later wins).")
    t.add_argument("--preset", help="preset to start from (see `gankit presets`); default seed-mlp")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML config file (instead of or over a preset)")
    t.add_argument("--data", metavar="SOURCE", help="data source: mnist, mnist:test, ring8, grid25, "
                   "fake[:CxHxW[:N]], or a folder / .npz / .npy / IDX path")
    t.add_argument("--steps", type=int, help="training steps (one D and one G update each)")
    t.add_argument("--resolution", type=int, metavar="PX",
                   help="square side the images are trained at (data.resolution); the conv archs' widths "
                        "follow model.cbase / cmax where set (docs/presets.md)")
    t.add_argument("--batch", type=int, metavar="N", help="batch size (train.batch; the global batch with --nproc)")
    t.add_argument("--max-seconds", type=float, metavar="S",
                   help="stop after S seconds of training (evaluation and checkpoints not counted), "
                   "as if --steps ended there (train.max_seconds)")
    t.add_argument("--profile", type=int, metavar="STEPS",
                   help="PyTorch profiler trace of STEPS steps after a 5-step warm-up: RUN/profile/*.pt.trace.json "
                   "(Perfetto, TensorBoard) and the top operators by self time (log.profile)")
    t.add_argument("--strict-data", action="store_true",
                   help="refuse a data folder with unreadable images instead of skipping them (data.strict)")
    t.add_argument("--out", metavar="DIR", help="run directory (default runs/PRESET-TIMESTAMP)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", choices=("auto", "cpu", "cuda"))
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.lr_g=1e-4 (repeatable)")
    t.add_argument("--eval-every", type=int, metavar="N",
                   help="evaluate every N steps (eval.metrics, default fid): metrics.jsonl, metrics.png, best.pt")
    t.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    t.add_argument("--force", action="store_true",
                   help="with --resume: continue even though the config differs from the run's")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train data-parallel over N processes on this machine (runs torchrun; on CUDA one "
                   "GPU each); train.batch is the global batch")
    t.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.config import load_config

    if args.resume:
        return resume(args)
    preset = args.preset or (None if args.config else "seed-mlp")
    overrides = flag_overrides(args) + args.overrides
    if args.data:  # the user's data replaces the preset's: its channels and size follow that data
        overrides = [k + "=null" for k in ("data.channels", "data.resolution")
                     if not any(o.startswith(k + "=") for o in args.overrides)] + overrides
    cfg = load_config(preset=preset, file=args.config, overrides=overrides)
    out = Path(args.out or f"runs/{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.nproc is not None:
        return api.launch(without_nproc(args, out), cfg, args.nproc, out)
    if rank() == 0:
        print(f"gankit: training {cfg.preset or args.config} ({cfg.task}) on {cfg.data.source} for "
              f"{cfg.train.steps} steps at batch {cfg.train.batch} -> {out}", file=sys.stderr)
    report_run(api.train(cfg, out, command=command_line(args)))
    return 0


def without_nproc(args: argparse.Namespace, out: Path) -> list[str]:
    """The same command line without --nproc, with the run directory fixed."""
    argv, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            argv.append(a)
    if not args.resume and not args.out:
        argv += ["--out", str(out)]
    return argv


def resume(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.training import train

    out = Path(args.resume)
    if args.preset or args.config or args.data or args.out:
        raise err("--resume continues a run as it was configured; drop --preset/--config/--data/--out "
                   "(change the length with --steps)")
    cfg, loaded = api.resume_config(out, flag_overrides(args) + args.overrides)
    if args.nproc is not None:
        return api.launch(without_nproc(args, out), cfg, args.nproc, out)
    if rank() == 0:
        at = f"step {loaded[0]['step']}" if loaded else "step 0 (no checkpoint yet)"
        print(f"gankit: resuming {out} at {at} of {cfg.train.steps}", file=sys.stderr)
    report_run(api._finished(train(cfg, out, resume=True, force=args.force, loaded=loaded,  # read once
                                command=command_line(args))))
    return 0
