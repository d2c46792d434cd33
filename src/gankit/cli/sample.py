"""`gankit sample` (images, points, style mixing, text lines, SMILES, audio clips) and `gankit project`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gankit.cli.common import command_line, err, use_flags


def add(sub) -> None:
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", metavar="RUN", help="run directory, checkpoint .pt, or exported .safetensors")
    s.add_argument("--n", type=int, help="number of samples (default 64); with --mix, sources per side (default 5)")
    s.add_argument("--seed", type=int, help="random seed (default: fresh each time)")
    s.add_argument("--out", metavar="PNG", help="write a grid image")
    s.add_argument("--npz", metavar="FILE", help="write uint8 (N, C, H, W) array `x` to an .npz")
    s.add_argument("--dir", metavar="DIR", help="write one PNG per sample into DIR")
    s.add_argument("--interpolate", action="store_true",
                   help="grid of spherical interpolations between random latent pairs (a pair per row)")
    s.add_argument("--frames", type=int, default=10, help="images per interpolation row (default 10)")
    s.add_argument("--class", dest="label", type=int, metavar="K",
                   help="conditional runs: samples of class K only (default: a class-by-row grid "
                        "for --out, uniform classes otherwise)")
    s.add_argument("--code", type=int, metavar="K", help="InfoGAN runs: fix the categorical code to K")
    s.add_argument("--truncate", type=float, metavar="PSI",
                   help="truncation trick, 0 < PSI <= 1 (1: none): in w for stylegan2 runs (w <- w_avg + PSI (w - "
                   "w_avg)), in z for the others (z <- PSI z: scaling, not BigGAN's resampling; InfoGAN codes kept)")
    s.add_argument("--mix", action="store_true",
                   help="stylegan2 runs: a style-mixing grid (--out): --n sources A along the top, --n sources B down "
                   "the left, each cell A's styles with B's coarse ones (--mix-layers)")
    s.add_argument("--mix-layers", metavar="A:B",
                   help="with --mix: the style inputs A to B-1 (0-based) taken from the row's source B (default: "
                   "the coarse ones, the first 4 but at most half: 0:3 at 28 px, 0:4 at 32 and 64 px)")
    s.add_argument("--no-ema", action="store_true",
                   help="sample from the raw generator instead of its EMA (runs trained with train.ema)")
    s.add_argument("--temperature", type=float, metavar="T",
                   help="text runs: softmax temperature (default 1: the model's distribution; lower: safer lines)")
    s.add_argument("--topic", metavar="NAME|K", help="topic-conditional text runs: lines of this topic only")
    s.add_argument("--prefix", metavar="TEXT", help="text runs: every line starts with TEXT")
    s.add_argument("--txt", metavar="FILE", help="text runs: write the lines to FILE (UTF-8) instead of printing them")
    s.add_argument("--smiles", metavar="CSV", help="SMILES runs: write the molecules to CSV (columns SMILES, valid)")
    s.add_argument("--wav", metavar="DIR", help="audio runs: write each clip to DIR/NNNNNN.wav (16-bit, 16 kHz)")
    s.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    s.set_defaults(func=cmd_sample)

    pj = sub.add_parser("project", help="find the latent of a real image (the StyleGAN2 projector)",
                        description="Project IMAGE into a generation run's latent space: Adam on w for a stylegan2 "
                        "run (one w for all style inputs, from w_avg; --space w+ for one per input), on z for every "
                        "other run (best of --restarts), with the StyleGAN2 projector's lr ramps and decaying noise on "
                        "the latent, against a pixel MSE plus, on 1-channel runs, a feature-space term from the "
                        "bundled MNIST network. Writes DIR/projected.png, target.png, latent.npz and project.json.")
    pj.add_argument("run", metavar="RUN", help="generation run directory, checkpoint .pt, or exported .safetensors")
    pj.add_argument("image", metavar="IMAGE", help="the image to project (the run's size and channels, or --resize)")
    pj.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty, or --overwrite)")
    pj.add_argument("--steps", type=int, default=1000, help="Adam steps (default 1000, the paper's)")
    pj.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1, the paper's)")
    pj.add_argument("--restarts", type=int, help="starting latents, the best kept (default 1 in w, from w_avg; 4 in z)")
    pj.add_argument("--space", choices=("auto", "z", "w", "w+"), default="auto",
                    help="latent searched (default auto: w for stylegan2 runs, z for the others)")
    pj.add_argument("--feature-weight", type=float, metavar="W",
                    help="weight of the feature-space term (default 0.1 on 1-channel runs of >= 16 px, 0 otherwise)")
    pj.add_argument("--class", dest="label", type=int, metavar="K",
                    help="conditional runs: the image's class (required)")
    pj.add_argument("--resize", action="store_true",
                    help="fit an image of another size or channel count to the run's (refused without it)")
    pj.add_argument("--seed", type=int, default=0, help="seed of the starting latents and the search noise (default 0)")
    use_flags(pj)
    pj.set_defaults(func=cmd_project)


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit import api, disk, viz
    from gankit.models.latent import check_truncation

    if args.n is not None and args.n < 1:
        raise err(f"--n {args.n}: expected a number of samples >= 1")
    check_truncation(args.truncate)
    if args.mix_layers and not args.mix:
        raise err("--mix-layers goes with --mix: gankit sample RUN --mix --mix-layers 0:4 --out grid.png")
    if args.mix and (args.interpolate or args.npz or args.dir or args.code is not None):
        raise err("--mix writes one style-mixing grid (--out PNG); drop --interpolate, --npz, --dir and --code")
    layers = parse_layers(args.mix_layers) if args.mix_layers else None
    run = api.load(args.run, device=args.device, ema=not args.no_ema)
    if run.task == "text":
        return sample_text(args, run)
    if run.task == "audio":
        return sample_audio(args, run)
    if args.wav:
        raise err(f"--wav is for audio runs; {args.run} is a {run.task!r} run")
    if args.temperature is not None or args.topic or args.prefix or args.txt or args.smiles:
        raise err(f"--temperature, --topic, --prefix, --txt and --smiles are for text runs; {args.run} is a "
                   f"{run.task!r} run")
    run.need("generate", "gankit sample")
    if args.mix:
        n = 5 if args.n is None else args.n
        x = run.style_mix(n, seed=args.seed, layers=layers, truncate=args.truncate, label=args.label)
        print(viz.save_grid(x, args.out or "style_mix.png", nrow=n + 1))
        return 0
    n = 64 if args.n is None else args.n
    if args.interpolate:
        x = run.interpolate(pairs=max(1, n // args.frames), steps=args.frames, seed=args.seed, truncate=args.truncate)
        print(viz.save_grid(x, args.out or "interpolation.png", nrow=args.frames))
        return 0
    if not (args.out or args.npz or args.dir):
        args.out = "samples.png"
    nrow = None
    if run.conditional and args.label is None and args.code is None and args.out and not (args.npz or args.dir):
        per_class = max(1, n // run.n_classes)  # a grid: one class per row
        x, nrow = run.sample_by_class(per_class, seed=args.seed, truncate=args.truncate), per_class
    else:
        x = run.sample(n, seed=args.seed, label=args.label, code=args.code, truncate=args.truncate)
    if run.data_meta["kind"] == "points":
        if args.dir:
            raise err("--dir writes images; this run generates 2-D points (use --out or --npz)")
        if args.out:
            print(viz.save_scatter(x, args.out))
    elif args.out:
        print(viz.save_grid(x, args.out, nrow=nrow))
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


def sample_text(args: argparse.Namespace, run) -> int:
    from gankit.util import write_text_atomic

    if args.out or args.npz or args.dir or args.interpolate or args.mix or args.label is not None or args.truncate:
        raise err("a text run samples lines: use --n, --temperature, --topic, --prefix, --seed and --txt FILE")
    lines = run.lines(20 if args.n is None else args.n, 1.0 if args.temperature is None else args.temperature,
                      args.seed, args.topic, args.prefix)
    if args.smiles:
        from gankit.data.molecules import is_valid

        if run.config.text.kind != "smiles":
            raise err(f"--smiles: {args.run} was trained on text, not SMILES (text.kind {run.config.text.kind}); "
                       "use --txt")
        ok = [is_valid(ln) for ln in lines]  # SMILES have no commas or quotes: plain CSV
        write_text_atomic(Path(args.smiles), "SMILES,valid\n" + "".join(f"{ln},{int(v)}\n" for ln, v in zip(lines, ok)))
        print(f"{args.smiles} ({len(lines)} molecules, {sum(ok)} valid)")
    if args.txt:
        write_text_atomic(Path(args.txt), "".join(ln + "\n" for ln in lines))
        print(f"{args.txt} ({len(lines)} lines)")
    elif not args.smiles:
        for ln in lines:
            print(ln)
    return 0


def sample_audio(args: argparse.Namespace, run) -> int:
    from gankit.tasks.audio.infer import write_clips

    if not args.wav:
        raise err("an audio run samples clips: gankit sample RUN --n 10 --wav DIR")
    if args.out or args.npz or args.dir or args.txt or args.smiles or args.temperature is not None or args.prefix:
        raise err("an audio run samples clips: use --n, --seed and --wav DIR")
    paths = write_clips(run, 10 if args.n is None else args.n, Path(args.wav), args.seed)
    print(f"{args.wav}/ ({len(paths)} clips, 16 kHz)")
    return 0


def parse_layers(text: str) -> tuple[int, int]:
    """'A:B' -> (A, B); the range itself is checked against the run's generator."""
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise err(f"--mix-layers {text!r}: expected A:B, two whole numbers (style inputs A to B-1), "
                   "e.g. --mix-layers 0:4") from None
    return a, b


def cmd_project(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.project(args.run, args.image, args.out, steps=args.steps, lr=args.lr, restarts=args.restarts,
                    space=args.space, feature_weight=args.feature_weight, label=args.label, resize=args.resize,
                    seed=args.seed, overwrite=args.overwrite, device=args.device, ema=not args.no_ema,
                    command=command_line(args))
    print(f"projected {args.image} into {r['space']} ({r['steps']} steps, {r['restarts']} restart"
          f"{'s' if r['restarts'] > 1 else ''}): loss {r['loss_start']:.4g} -> {r['loss_end']:.4g}, "
          f"PSNR {r['psnr']:.2f} dB")
    print(f"wrote {r['out']}/ (projected.png, target.png, latent.npz, project.json)")
    return 0
