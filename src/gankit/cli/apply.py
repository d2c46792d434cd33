"""The commands that apply a trained run to a user's files: `translate`, `superres`, `interpolate`,
`repair`, and `synth` (a labelled synthetic dataset)."""

from __future__ import annotations

import argparse

from gankit.cli.common import done, err, use_flags


def add(sub) -> None:
    tr = sub.add_parser("translate", help="translate an image, a folder of images or a video with a translation run",
                        description="Translate INPUT (an image, a folder of images, or a video, frame by frame "
                        "at its frame rate; audio is dropped) with a pix2pix or CycleGAN run. Inputs of another "
                        "size or channel count are converted, with one line saying so (--strict refuses them).")
    tr.add_argument("run", metavar="RUN", help="translation run directory, checkpoint .pt, or exported .safetensors")
    tr.add_argument("input", metavar="INPUT", help="image, folder of images, or video (.mp4, .mov, .mkv, .avi, .webm)")
    tr.add_argument("--out", required=True, metavar="OUTPUT",
                    help="image file, folder (same relative names), or video (.mp4, .mov, .mkv)")
    tr.add_argument("--direction", choices=("AtoB", "BtoA"),
                    help="CycleGAN runs: which generator (default AtoB); pix2pix runs: their training direction")
    tr.add_argument("--strict", action="store_true", help="refuse inputs whose size or channels differ from the run's")
    use_flags(tr)
    tr.set_defaults(func=cmd_translate)

    sr = sub.add_parser("superres", help="upscale an image, a folder of images or a video with a super-resolution run",
                        description="Upscale INPUT (an image of any size, a folder of images, or a video frame by "
                        "frame at its frame rate; audio is dropped) by the run's factor, in overlapping tiles so "
                        "that memory stays bounded.")
    sr.add_argument("run", metavar="RUN", help="super-resolution run directory, checkpoint .pt, or exported .safetensors")
    sr.add_argument("input", metavar="INPUT", help="image, folder of images, or video")
    sr.add_argument("--out", required=True, metavar="OUTPUT", help="image file, folder, or video (.mp4, .mov, .mkv)")
    sr.add_argument("--scale", type=int, help="the run's factor (refused if it differs: a run upscales by what it learned)")
    sr.add_argument("--tile", type=int, default=128, help="LR tile side (default 128; smaller: less memory)")
    sr.add_argument("--overlap", type=int, default=16, help="LR pixels of context around each tile (default 16)")
    sr.add_argument("--strict", action="store_true", help="refuse inputs whose channels differ from the run's")
    use_flags(sr)
    sr.set_defaults(func=cmd_superres)

    ip = sub.add_parser("interpolate", help="raise a video's frame rate, or replace damaged frames, with an "
                        "interpolation run", description="With --factor N, write N - 1 new frames between every two "
                        "frames (the frame rate becomes N x the input's); with --fill --frames LIST, replace the listed "
                        "frames (0-based) by predictions from their neighbours. Audio is dropped.")
    ip.add_argument("run", metavar="RUN", help="interpolation run directory, checkpoint .pt, or exported .safetensors")
    ip.add_argument("input", metavar="VIDEO")
    ip.add_argument("--out", required=True, metavar="VIDEO", help="output video (.mp4, .mov, .mkv)")
    ip.add_argument("--factor", type=int, help="2, 4 or 8: the new frame rate, as a multiple of the input's")
    ip.add_argument("--fill", action="store_true", help="replace the frames listed by --frames")
    ip.add_argument("--frames", metavar="LIST", help="with --fill: frame numbers, e.g. 10,11,40")
    ip.add_argument("--strict", action="store_true", help="refuse frames whose channels differ from the run's")
    use_flags(ip)
    ip.set_defaults(func=cmd_interpolate)

    rp = sub.add_parser("repair", help="fill the holes of an image or a folder of images (inpainting)",
                        description="Repair INPUT (an image, or a folder of images with a folder of masks matched "
                        "by name) where its mask is white, with a learned inpainter (an inpaint run: --method learned) "
                        "or by inverting an unconditional generator (a generate run: --method invert). Known pixels "
                        "are kept exactly. A filled hole is a plausible guess, not a measurement.")
    rp.add_argument("run", metavar="RUN", help="inpaint or generate run directory, or checkpoint .pt")
    rp.add_argument("input", metavar="INPUT", help="image, or folder of images")
    rp.add_argument("--out", required=True, metavar="OUTPUT", help="image file (.png, .jpg, .bmp), or folder")
    rp.add_argument("--mask", metavar="MASK", help="mask image (white = missing), or a folder of masks for a folder")
    rp.add_argument("--box", metavar="X,Y,W,H", help="a rectangular hole instead of a mask: top-left x,y and size")
    rp.add_argument("--method", choices=("learned", "invert"),
                    help="learned (inpaint runs; the default for them) or invert (generate runs; theirs)")
    rp.add_argument("--show", action="store_true", help="also write NAME_show.png: damaged | repaired | mask")
    rp.add_argument("--resize-mask", action="store_true", help="resize a mask of another size to its image (nearest)")
    rp.add_argument("--restarts", type=int, default=8, help="invert: random restarts per image (default 8)")
    rp.add_argument("--steps", type=int, default=300, help="invert: Adam steps per restart (default 300)")
    rp.add_argument("--prior", choices=("d", "norm", "none"), default="d",
                    help="invert: the prior loss: d (the run's discriminator, Yeh et al.), norm (|z|), none")
    rp.add_argument("--seed", type=int, default=0, help="invert: seed of the restarts' starting latents")
    rp.add_argument("--strict", action="store_true", help="refuse images whose channels (or, invert, size) differ")
    use_flags(rp)
    rp.set_defaults(func=cmd_repair)

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


def cmd_translate(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.translate(args.run, args.input, args.out, args.direction, strict=args.strict,
                      overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    print(f"translated {done(r)} ({r['direction']}): {r['out']}")
    return 0


def cmd_superres(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.superres(args.run, args.input, args.out, args.scale, args.tile, args.overlap, strict=args.strict,
                     overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    print(f"upscaled {done(r)} x{r['scale']}: {r['out']}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit import api

    fill = None
    if args.fill or args.frames:
        if not (args.fill and args.frames):
            raise err("--fill and --frames go together: --fill --frames 10,11,40")
        try:
            fill = [int(v) for v in args.frames.split(",") if v.strip()]
        except ValueError:
            raise err(f"--frames {args.frames!r}: expected frame numbers separated by commas, e.g. 10,11,40") from None
    r = api.interpolate(args.run, args.input, args.out, args.factor, fill, strict=args.strict,
                        overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    done = f"filled frames {','.join(map(str, r['filled']))}" if r["filled"] else f"x{r['factor']} frame rate"
    print(f"{done}: {r['n']} frames at {r['fps']:g} fps: {r['out']}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.tasks.generate.invert import InvertSettings
    from gankit.tasks.inpaint.infer import parse_box

    box = parse_box(args.box) if args.box else None
    settings = InvertSettings(restarts=args.restarts, steps=args.steps, prior=args.prior, seed=args.seed)
    r = api.repair(args.run, args.input, args.out, args.mask, box, args.method, settings, show=args.show,
                   resize_mask=args.resize_mask, strict=args.strict, overwrite=args.overwrite, device=args.device,
                   ema=not args.no_ema)
    print(f"repaired {done(r)} ({r['method']}): {r['out']}" + (f"  (side by side: {r['show']})" if "show" in r else ""))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import shlex

    from gankit import api

    r = api.synth(args.run, args.per_class, args.out, args.npz, args.truncate, args.filter, args.classifier,
                  seed=args.seed, batch=args.batch, overwrite=args.overwrite, device=args.device,
                  ema=not args.no_ema, command=shlex.join(["gankit", *args.argv]))
    k = len(r["classes"])
    print(f"wrote {r['n']} images ({k} classes x {r['n'] // k}) to {r['out']}" + ("/" if r["kind"] == "folder" else ""))
    print(f"labels:  {r['labels']}")
    print(f"record:  {r['json']}")
    return 0
