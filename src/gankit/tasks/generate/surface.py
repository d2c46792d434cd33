"""The generation task's user surface: its `gankit sample` flags (grids, latent walks, classes,
InfoGAN codes, truncation, style mixing), `gankit project` (the StyleGAN2 projector) and
`gankit synth` (a labelled synthetic dataset), and their Python API (`gankit.api.project`,
`gankit.api.synth`). No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import command_line, err, image_command, use_args, use_flags

USAGE = "gankit sample {run} --n 64 --out grid.png"
API = ("project", "synth")


# -- gankit sample ------------------------------------------------------------------------------


def sample_flags(g) -> None:
    g.add_argument("--out", metavar="PNG", help="write a grid image (default samples.png; 64 samples, --mix: 5 "
                   "sources per side)")
    g.add_argument("--npz", metavar="FILE", help="write uint8 (N, C, H, W) array `x` to an .npz")
    g.add_argument("--dir", metavar="DIR", help="write one PNG per sample into DIR")
    g.add_argument("--batch", type=int, metavar="N",
                   help="samples generated at once (default: 1024 up to 64 px, 64 at 256 px, 4 at 1024 px); "
                   "lower it if memory runs out: the samples are the same whatever N (to float rounding)")
    g.add_argument("--interpolate", action="store_true",
                   help="grid of spherical interpolations between random latent pairs (a pair per row)")
    g.add_argument("--frames", type=int, metavar="K", help="images per interpolation row (default 10)")
    g.add_argument("--class", dest="label", type=int, metavar="K",
                   help="conditional runs: samples of class K only (default: a class-by-row grid "
                        "for --out, uniform classes otherwise)")
    g.add_argument("--code", type=int, metavar="K", help="InfoGAN runs: fix the categorical code to K")
    g.add_argument("--truncate", type=float, metavar="PSI",
                   help="truncation trick, 0 < PSI <= 1 (1: none): in w for stylegan2 runs (w <- w_avg + PSI (w - "
                   "w_avg)), in z for the others (z <- PSI z: scaling, not BigGAN's resampling; InfoGAN codes kept)")
    g.add_argument("--mix", action="store_true",
                   help="stylegan2 runs: a style-mixing grid (--out): --n sources A along the top, --n sources B down "
                   "the left, each cell A's styles with B's coarse ones (--mix-layers)")
    g.add_argument("--mix-layers", metavar="A:B",
                   help="with --mix: the style inputs A to B-1 (0-based) taken from the row's source B (default: "
                   "the coarse ones, the first 4 but at most half: 0:3 at 28 px, 0:4 from 32 px up)")


def sample(args: argparse.Namespace, run) -> int:
    import numpy as np

    from gankit import disk, viz
    from gankit.models.latent import check_truncation

    check_truncation(args.truncate)
    if args.mix_layers and not args.mix:
        raise err("--mix-layers goes with --mix: gankit sample RUN --mix --mix-layers 0:4 --out grid.png")
    if args.mix and (args.interpolate or args.npz or args.dir or args.code is not None):
        raise err("--mix writes one style-mixing grid (--out PNG); drop --interpolate, --npz, --dir and --code")
    frames = 10 if args.frames is None else args.frames
    if frames < 1:
        raise err(f"--frames {frames}: expected a number of images per row >= 1")
    layers = parse_layers(args.mix_layers) if args.mix_layers else None
    if args.mix:
        n = 5 if args.n is None else args.n
        x = run.style_mix(n, seed=args.seed, layers=layers, truncate=args.truncate, label=args.label, batch=args.batch)
        print(viz.save_grid(x, args.out or "style_mix.png", nrow=n + 1, max_side=None))
        return 0
    n = 64 if args.n is None else args.n
    if args.interpolate:
        x = run.interpolate(pairs=max(1, n // frames), steps=frames, seed=args.seed, truncate=args.truncate,
                            batch=args.batch)
        print(viz.save_grid(x, args.out or "interpolation.png", nrow=frames, max_side=None))
        return 0
    if not (args.out or args.npz or args.dir):
        args.out = "samples.png"
    nrow = None
    if run.conditional and args.label is None and args.code is None and args.out and not (args.npz or args.dir):
        per_class = max(1, n // run.n_classes)  # a grid: one class per row
        x, nrow = run.sample_by_class(per_class, seed=args.seed, truncate=args.truncate, batch=args.batch), per_class
    else:
        x = run.sample(n, seed=args.seed, label=args.label, code=args.code, truncate=args.truncate, batch=args.batch)
    if run.data_meta["kind"] == "points":
        if args.dir:
            raise err("--dir writes images; this run generates 2-D points (use --out or --npz)")
        if args.out:
            print(viz.save_scatter(x, args.out))
    elif args.out:
        print(viz.save_grid(x, args.out, nrow=nrow, max_side=None))  # full size: the user asked for these samples
    if args.npz:
        with disk.atomic(args.npz) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, x=x.numpy())
        print(args.npz)
    if args.dir:
        d = Path(args.dir)
        d.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(x):
            viz.save_image(img.permute(1, 2, 0).numpy(), d / f"{i:06d}.png")
        print(f"{d}/ ({len(x)} images)")
    return 0


def parse_layers(text: str) -> tuple[int, int]:
    """'A:B' -> (A, B); the range itself is checked against the run's generator."""
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise err(f"--mix-layers {text!r}: expected A:B, two whole numbers (style inputs A to B-1), "
                  "e.g. --mix-layers 0:4") from None
    return a, b


# -- gankit project, gankit synth ----------------------------------------------------------------


def commands(sub) -> None:
    with image_command(sub, "project", func=cmd_project,
                       help="find the latent of a real image (the StyleGAN2 projector)",
                       description="Project IMAGE into a generation run's latent space: Adam on w for a stylegan2 "
                       "run (one w for all style inputs, from w_avg; --space w+ for one per input), on z for every "
                       "other run (best of --restarts), with the StyleGAN2 projector's lr ramps and decaying noise "
                       "on the latent, against a pixel MSE plus, on 1-channel runs, a feature-space term from the "
                       "bundled MNIST network. Writes DIR/projected.png, target.png, latent.npz and project.json.",
                       run_help="generation run directory, checkpoint .pt, or exported .safetensors",
                       input_metavar="IMAGE",
                       input_help="the image to project (the run's size and channels, or --resize)",
                       out_metavar="DIR", out_help="output folder (new or empty, or --overwrite)") as pj:
        pj.add_argument("--steps", type=int, default=1000, help="Adam steps (default 1000, the paper's)")
        pj.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1, the paper's)")
        pj.add_argument("--restarts", type=int,
                        help="starting latents, the best kept (default 1 in w, from w_avg; 4 in z)")
        pj.add_argument("--space", choices=("auto", "z", "w", "w+"), default="auto",
                        help="latent searched (default auto: w for stylegan2 runs, z for the others)")
        pj.add_argument("--feature-weight", type=float, metavar="W", help="weight of the feature-space term "
                        "(default 0.1 on 1-channel runs of >= 16 px, 0 otherwise)")
        pj.add_argument("--class", dest="label", type=int, metavar="K",
                        help="conditional runs: the image's class (required)")
        pj.add_argument("--resize", action="store_true",
                        help="fit an image of another size or channel count to the run's (refused without it)")
        pj.add_argument("--seed", type=int, default=0,
                        help="seed of the starting latents and the search noise (default 0)")

    sy = sub.add_parser("synth", help="write a labelled synthetic dataset (class folders of PNGs, or .npz)",
                        description="Write N generated images per class: class subfolders of PNGs in --out (named "
                        "by the run's classes; `gankit train --data DIR` reads them) or --npz with x (uint8 N x C x H "
                        "x W) and y (int64), plus a synth.json record. Labels: the requested class (cgan, acgan), "
                        "an InfoGAN code mapped to its majority class by the feature network, or with --filter the "
                        "classifier's argmax.")
    sy.add_argument("run", metavar="RUN", help="generation run directory, checkpoint .pt, or exported .safetensors")
    sy.add_argument("--per-class", type=int, required=True, metavar="N", help="images per class")
    sy.add_argument("--out", metavar="DIR", help="output folder of class subfolders (with synth.json)")
    sy.add_argument("--npz", metavar="FILE.npz", help="write one .npz (x, y) instead, with FILE.json beside it")
    sy.add_argument("--truncate", type=float, metavar="PSI",
                    help="truncation trick, 0 < PSI <= 1: in w for stylegan2 runs, else in z: z <- PSI * z "
                    "(scaling; noise only, InfoGAN codes kept)")
    sy.add_argument("--filter", type=float, metavar="T",
                    help="keep only samples the classifier puts in their class with probability >= T (0 < T < 1); "
                    "an unconditional run's samples are then labelled by the classifier")
    sy.add_argument("--classifier", metavar="PATH.safetensors",
                    help="feature network for --filter and InfoGAN code mapping (default: the bundled MNIST "
                    "network; train one with `gankit features train`)")
    sy.add_argument("--seed", type=int, default=0, help="random seed (default 0): the same seed, the same dataset")
    sy.add_argument("--batch", type=int, default=256, help="images generated at once (default 256)")
    use_flags(sy)
    sy.set_defaults(func=cmd_synth)


def cmd_project(args: argparse.Namespace) -> int:
    r = project(args.run, args.input, args.out, steps=args.steps, lr=args.lr, restarts=args.restarts,
                space=args.space, feature_weight=args.feature_weight, label=args.label, resize=args.resize,
                seed=args.seed, command=command_line(args), **use_args(args))
    print(f"projected {args.input} into {r['space']} ({r['steps']} steps, {r['restarts']} restart"
          f"{'s' if r['restarts'] > 1 else ''}): loss {r['loss_start']:.4g} -> {r['loss_end']:.4g}, "
          f"PSNR {r['psnr']:.2f} dB")
    print(f"wrote {r['out']}/ (projected.png, target.png, latent.npz, project.json)")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import shlex

    r = synth(args.run, args.per_class, args.out, args.npz, args.truncate, args.filter, args.classifier,
              seed=args.seed, batch=args.batch, command=shlex.join(["gankit", *args.argv]), **use_args(args))
    k = len(r["classes"])
    print(f"wrote {r['n']} images ({k} classes x {r['n'] // k}) to {r['out']}" + ("/" if r["kind"] == "folder" else ""))
    print(f"labels:  {r['labels']}")
    print(f"record:  {r['json']}")
    return 0


# -- the Python API (gankit.api.project, gankit.api.synth) -----------------------------------------


def project(run_path: str | Path, image: str | Path, out: str | Path, steps: int = 1000, lr: float = 0.1,
            restarts: int | None = None, space: str = "auto", feature_weight: float | None = None,
            label: int | None = None, resize: bool = False, seed: int = 0, overwrite: bool = False,
            device: str = "cpu", ema: bool = True, command: str | None = None) -> dict:
    """Project a real image into a generation run's latent space (the StyleGAN2 projector: w for a
    stylegan2 run, z for every other) and write `out`/: projected.png, target.png, latent.npz and
    project.json. `label`: the image's class (conditional runs need one); `resize`: fit an image of
    another size or channel count instead of refusing it. Returns the project.json record plus `out`.
    In memory: `gankit.tasks.generate.project.project_image(run, x)`."""
    from gankit.tasks.generate.project import ProjectSettings, check_out, project_file

    settings = ProjectSettings(steps=steps, lr=lr, restarts=restarts, space=space, feature_weight=feature_weight,
                               seed=seed)
    settings.check()  # before loading anything
    check_out(out, overwrite)
    from gankit.api import load

    run = load(run_path, device=device, ema=ema)
    return project_file(run, image, out, settings, label, resize=resize, overwrite=overwrite, command=command)


def synth(run_path: str | Path, per_class: int, out: str | Path | None = None, npz: str | Path | None = None,
          truncate: float | None = None, filter: float | None = None, classifier: str | Path | None = None,
          seed: int = 0, batch: int = 256, overwrite: bool = False, device: str = "cpu", ema: bool = True,
          command: str | None = None) -> dict:
    """Write a labelled synthetic dataset: `per_class` images per class of a generation run, as class
    subfolders of PNGs in `out` or as `npz` (x uint8 (N, C, H, W), y int64), with a synth.json record.
    Labels: the requested class (conditional runs), the InfoGAN code mapped to a class by the feature
    network, or (with `filter`) the classifier's argmax. `truncate` psi: z <- psi * z; `filter` T: keep
    samples the classifier (`classifier` .safetensors, default the bundled MNIST net) puts in their
    class with probability >= T. See `gankit.tasks.generate.synth`."""
    from gankit.tasks.generate.synth import check_options, check_output, synthesize

    check_options(per_class, truncate, filter, out, npz)  # before loading anything
    check_output(out, npz, overwrite)
    from gankit.api import load

    run = load(run_path, device=device, ema=ema)
    return synthesize(run, per_class, out, npz, truncate, filter, classifier, seed, batch, overwrite, command)
