"""The `gankit` command: a thin layer over the Python API.

    gankit train --preset seed-mlp --data mnist --steps 2000 --out runs/mnist
    gankit sample runs/mnist --n 64 --out grid.png
    gankit presets
    gankit data info mnist

A user's mistake prints one line, ``gankit: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from gankit.errors import GankitError

    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from gankit.threads import apply_cpu_budget

    apply_cpu_budget()  # no more threads than the CPUs (or the container's quota) this process gets
    try:
        return args.func(args) or 0
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from gankit.version import __version__

    p = argparse.ArgumentParser(prog="gankit", description="Train, evaluate and apply GANs.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    t = sub.add_parser("train", help="train a GAN", description="Train a GAN. Config = preset or "
                       "--config file, then the flags below, then --set overrides (later wins).")
    t.add_argument("--preset", help="preset to start from (see `gankit presets`); default seed-mlp")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML config file (instead of or over a preset)")
    t.add_argument("--data", metavar="SOURCE", help="data source: mnist, mnist:test, ring8, grid25, "
                   "fake[:CxHxW[:N]], or a folder / .npz / .npy / IDX path")
    t.add_argument("--steps", type=int, help="training steps (one D and one G update each)")
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
    t.set_defaults(func=_cmd_train)

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
    s.set_defaults(func=_cmd_sample)

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
    _use_flags(pj)
    pj.set_defaults(func=_cmd_project)

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
    _use_flags(tr)
    tr.set_defaults(func=_cmd_translate)

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
    _use_flags(sr)
    sr.set_defaults(func=_cmd_superres)

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
    _use_flags(ip)
    ip.set_defaults(func=_cmd_interpolate)

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
    _use_flags(rp)
    rp.set_defaults(func=_cmd_repair)

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
    _use_flags(sy)
    sy.set_defaults(func=_cmd_synth)

    from gankit.apps.augment_eval import HELP_BUDGETS as AUGMENT_EVAL_BUDGETS  # no torch: plain text

    ae = sub.add_parser("augment-eval", help="does low-data GAN synthetic data beat classical augmentation for a classifier?",
                        description="For each n: train a class-conditional GAN (preset cgan) on n labelled real images "
                        "only (mnist@n), then a small CNN with one fixed recipe on five arms: 1 real(n); 2 real(n) + "
                        "classical augmentation (shifts +-2 px, rotations +-10 deg, elastic alpha 34 sigma 4, Simard et al. "
                        "2003); 3 real(n) + synthetic (each --ratios r: r x n images); 4 real(n) + classical + synthetic; "
                        "5 synthetic only (n images: the Classification Accuracy Score). Test accuracy on the test set "
                        "(MNIST's 10,000), mean and std over classifier seeds; arm 2 is the bar. The ratio reported for "
                        "arms 3/4 is chosen on a stratified validation split of the n images, never the test set. "
                        "Writes OUT/augment_eval.json, .md (table), .png (accuracy vs n) and a GAN run per n. "
                        "Budgets: see --quick and the epilog.",
                        epilog=AUGMENT_EVAL_BUDGETS)
    ae.add_argument("--out", required=True, metavar="DIR", help="new (or empty) output folder")
    ae.add_argument("--n", default="100,500,1000", metavar="LIST",
                    help="labelled real images, comma-separated multiples of the class count, or 'all' "
                    "(default 100,500,1000)")
    ae.add_argument("--ratios", default="0.5,1,4", metavar="LIST",
                    help="synthetic images per real image for arms 3/4 (default 0.5,1,4)")
    ae.add_argument("--data", metavar="DIR", help="a labelled folder (class subfolders) instead of MNIST; needs --test")
    ae.add_argument("--test", metavar="DIR", help="with --data: the labelled test folder (the same classes)")
    ae.add_argument("--quick", action="store_true", help="a smoke run: tiny budgets, one seed, 500 test images")
    ae.add_argument("--seeds", type=int, help="classifier seeds (default 3; --quick 1)")
    ae.add_argument("--gan-steps", type=int, help="GAN training steps per n (overrides the budget)")
    ae.add_argument("--clf-steps", type=int, help="classifier Adam steps (overrides the budget)")
    ae.add_argument("--val-fraction", type=float, default=0.2,
                    help="share of the n images held out to choose the ratio (default 0.2, stratified)")
    ae.add_argument("--gan-set", dest="gan_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the GAN's config, e.g. --gan-set reg.diffaug=translation (repeatable)")
    ae.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ae.set_defaults(func=_cmd_augment_eval)

    rep = sub.add_parser("report", help="write a run's self-contained HTML report, or compare runs on one page",
                         description="One run: RUN/report.html (or --out), one file that opens offline: config and "
                         "command, data, loss and D(x)/D(G(z)) curves, every metric with its protocol, the grids over "
                         "training with a step slider, checkpoints, warnings. Training refreshes it at every grid "
                         "step. Several runs: one page with their curves overlaid and a table of final metrics.")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    rep.add_argument("--out", metavar="HTML", help="where to write the page (default: RUN/report.html for one run, "
                     "compare.html here for several)")
    rep.set_defaults(func=_cmd_report)

    sv = sub.add_parser("serve", help="a local web page over a run: sample, interpolate, upload and apply",
                        description="Load the run once and serve a page on this machine: a sample grid with a seed, "
                        "a class picker, a latent slider, InfoGAN code sliders; for translate / superres / inpaint / "
                        "interpolate runs an upload box (and a mask canvas for inpaint). Prints its URL; Ctrl-C stops. "
                        "Needs the serve extra (pip install 'gankit[serve]'; make installs it).")
    sv.add_argument("run", metavar="RUN", help="run directory or checkpoint .pt")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only; others warn that anyone on that network can use it)")
    sv.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed)")
    sv.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10)")
    sv.add_argument("--max-samples", type=int, default=64, help="most samples one request may ask for (default 64)")
    sv.add_argument("--no-ema", action="store_true", help="use the raw generator(s), not the EMA")
    sv.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    sv.set_defaults(func=_cmd_serve)

    x = sub.add_parser("export", help="write a run's generator as .safetensors + .json (no pickle)")
    x.add_argument("run", metavar="RUN", help="run directory or checkpoint .pt")
    x.add_argument("--out", required=True, metavar="PATH.safetensors")
    x.add_argument("--no-ema", action="store_true", help="export the raw generator instead of its EMA")
    x.set_defaults(func=_cmd_export)

    e = sub.add_parser("eval", help="score samples against a reference set (FID, KID, IS, ...)",
                       description="Score a run, a checkpoint, a samples .npz or a folder of images "
                       "against a reference set with the project's offline feature network.")
    e.add_argument("target", metavar="RUN|CHECKPOINT|SAMPLES.npz|DIR", nargs="?")
    e.add_argument("--metrics", default="fid,kid,is,pr,dc,classes",
                   help="comma-separated: fid, kid, is, pr (precision/recall), dc (density/coverage), "
                        "classes (class histogram + KL), dacc (run's D accuracy); default all but dacc")
    e.add_argument("--n", type=int, default=10_000, help="samples drawn from a run (default 10000)")
    e.add_argument("--ref", default="mnist:test", help="reference data source (default mnist:test)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    e.add_argument("--featurenet", metavar="PATH", help="feature network .safetensors "
                   "(default: the bundled MNIST network; train one with `gankit features train`)")
    e.add_argument("--inception-weights", metavar="PATH",
                   help="also compute the standard Inception FID (needs torch-fidelity and the "
                        "pt_inception-2015-12-05 weights file; nothing is downloaded)")
    e.add_argument("--floor", action="store_true",
                   help="score 10,000 real MNIST training images instead: what a perfect generator gets")
    e.add_argument("--no-ema", action="store_true", help="evaluate a run's raw generator, not its EMA")
    e.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    e.set_defaults(func=_cmd_eval)

    f = sub.add_parser("features", help="feature networks for evaluation")
    fsub = f.add_subparsers(metavar="ACTION")
    ft = fsub.add_parser("train", help="train a feature network on a labelled dataset")
    ft.add_argument("--data", required=True, metavar="SOURCE", help="labelled data (class subfolders, npz with y)")
    ft.add_argument("--test", metavar="SOURCE", help="held-out labelled data for the recorded accuracy")
    ft.add_argument("--out", required=True, metavar="PATH.safetensors")
    ft.add_argument("--epochs", type=int, default=3)
    ft.add_argument("--batch", type=int, default=128)
    ft.add_argument("--resolution", type=int, help="resize images first (square side)")
    ft.add_argument("--seed", type=int, default=0)
    ft.set_defaults(func=_cmd_features_train)

    bn = sub.add_parser("bench", help="training speed: gankit's loop against the tutorial's loop",
                        description="Times the tutorial's loop (DataLoader over per-sample PIL "
                        "transforms, Sigmoid + BCELoss, two G forwards) and gankit's loop for the same "
                        "networks, batch and loss, in one process.")
    bn.add_argument("--preset", default="seed-mlp")
    bn.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bn.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    bn.add_argument("--seconds", type=float, default=10.0, help="seconds of training each (default 10)")
    bn.add_argument("--rounds", type=int, default=5,
                    help="alternating timed rounds the seconds are split into; ratio = median of the "
                    "rounds' ratios (default 5)")
    bn.add_argument("--data", default="mnist")
    bn.add_argument("--precision", choices=("fp32", "bf16"), help="gankit's precision (default: the preset's)")
    bn.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of gankit's config, e.g. --set train.channels_last=true (repeatable)")
    bn.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="then a PyTorch profiler trace of STEPS of gankit's steps (after the timed rounds): "
                    "DIR/profile/*.pt.trace.json and the top operators by self time")
    bn.add_argument("--profile-dir", metavar="DIR", help="where --profile writes (default runs/bench-PRESET-TIME)")
    bn.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bn.set_defaults(func=_cmd_bench)

    pr = sub.add_parser("presets", help="list the presets")
    pr.add_argument("name", nargs="?", help="print this preset's full YAML")
    pr.set_defaults(func=_cmd_presets)

    d = sub.add_parser("data", help="inspect data sources")
    dsub = d.add_subparsers(metavar="ACTION")
    di = dsub.add_parser("info", help="count, shape, classes, value range and a preview grid")
    di.add_argument("source", metavar="SOURCE")
    di.add_argument("--preview", metavar="PNG", help="where to write the preview grid "
                    "(default: $GANKIT_CACHE/previews/NAME.png)")
    di.add_argument("--resolution", type=int, help="resize as a model would (square side)")
    di.add_argument("--channels", type=int, choices=(1, 3))
    di.set_defaults(func=_cmd_data_info)
    return p


def _use_flags(p: argparse.ArgumentParser) -> None:
    """The flags every command that applies a trained run to a user's files shares."""
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator(s), not the EMA")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))


def _done(r: dict) -> str:
    """'1 image' / 'N images' / 'N frames at F fps' for what an inference command wrote."""
    return {"image": "1 image", "folder": f"{r['n']} images"}.get(r["kind"], f"{r['n']} frames at {r.get('fps', 0):g} fps")


# -- commands -------------------------------------------------------------------------------

def _cmd_train(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.config import load_config

    if args.resume:
        return _resume(args)
    preset = args.preset or (None if args.config else "seed-mlp")
    overrides = _flag_overrides(args) + args.overrides
    if args.data:  # the user's data replaces the preset's: its channels and size follow that data
        overrides = [k + "=null" for k in ("data.channels", "data.resolution")
                     if not any(o.startswith(k + "=") for o in args.overrides)] + overrides
    cfg = load_config(preset=preset, file=args.config, overrides=overrides)
    out = Path(args.out or f"runs/{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.nproc is not None:
        return api.launch(_without_nproc(args, out), cfg, args.nproc, out)
    if _rank() == 0:
        print(f"gankit: training {cfg.preset or args.config} ({cfg.task}) on {cfg.data.source} for "
              f"{cfg.train.steps} steps at batch {cfg.train.batch} -> {out}", file=sys.stderr)
    _report(api.train(cfg, out, command=_command(args)))
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _without_nproc(args: argparse.Namespace, out: Path) -> list[str]:
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


def _resume(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.training import train

    out = Path(args.resume)
    if args.preset or args.config or args.data or args.out:
        raise _err("--resume continues a run as it was configured; drop --preset/--config/--data/--out "
                   "(change the length with --steps)")
    cfg, loaded = api.resume_config(out, _flag_overrides(args) + args.overrides)
    if args.nproc is not None:
        return api.launch(_without_nproc(args, out), cfg, args.nproc, out)
    if _rank() == 0:
        at = f"step {loaded[0]['step']}" if loaded else "step 0 (no checkpoint yet)"
        print(f"gankit: resuming {out} at {at} of {cfg.train.steps}", file=sys.stderr)
    _report(api._finished(train(cfg, out, resume=True, force=args.force, loaded=loaded,  # read once
                                command=_command(args))))
    return 0


def _sample_audio(args: argparse.Namespace, run) -> int:
    from gankit.tasks.audio.infer import write_clips

    if not args.wav:
        raise _err("an audio run samples clips: gankit sample RUN --n 10 --wav DIR")
    if args.out or args.npz or args.dir or args.txt or args.smiles or args.temperature is not None or args.prefix:
        raise _err("an audio run samples clips: use --n, --seed and --wav DIR")
    paths = write_clips(run, 10 if args.n is None else args.n, Path(args.wav), args.seed)
    print(f"{args.wav}/ ({len(paths)} clips, 16 kHz)")
    return 0


def _sample_text(args: argparse.Namespace, run) -> int:
    from gankit.util import write_text_atomic

    if args.out or args.npz or args.dir or args.interpolate or args.mix or args.label is not None or args.truncate:
        raise _err("a text run samples lines: use --n, --temperature, --topic, --prefix, --seed and --txt FILE")
    lines = run.lines(20 if args.n is None else args.n, 1.0 if args.temperature is None else args.temperature,
                      args.seed, args.topic, args.prefix)
    if args.smiles:
        from gankit.data.molecules import is_valid

        if run.config.text.kind != "smiles":
            raise _err(f"--smiles: {args.run} was trained on text, not SMILES (text.kind {run.config.text.kind}); "
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


def _cmd_sample(args: argparse.Namespace) -> int:
    from gankit import api, viz
    from gankit.models.latent import check_truncation

    if args.n is not None and args.n < 1:
        raise _err(f"--n {args.n}: expected a number of samples >= 1")
    check_truncation(args.truncate)
    if args.mix_layers and not args.mix:
        raise _err("--mix-layers goes with --mix: gankit sample RUN --mix --mix-layers 0:4 --out grid.png")
    if args.mix and (args.interpolate or args.npz or args.dir or args.code is not None):
        raise _err("--mix writes one style-mixing grid (--out PNG); drop --interpolate, --npz, --dir and --code")
    layers = _parse_layers(args.mix_layers) if args.mix_layers else None
    run = api.load(args.run, device=args.device, ema=not args.no_ema)
    if run.task == "text":
        return _sample_text(args, run)
    if run.task == "audio":
        return _sample_audio(args, run)
    if args.wav:
        raise _err(f"--wav is for audio runs; {args.run} is a {run.task!r} run")
    if args.temperature is not None or args.topic or args.prefix or args.txt or args.smiles:
        raise _err(f"--temperature, --topic, --prefix, --txt and --smiles are for text runs; {args.run} is a "
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
            raise _err("--dir writes images; this run generates 2-D points (use --out or --npz)")
        if args.out:
            print(viz.save_scatter(x, args.out))
    elif args.out:
        print(viz.save_grid(x, args.out, nrow=nrow))
    if args.npz:
        np.savez_compressed(args.npz, x=x.numpy())
        print(args.npz)
    if args.dir:
        d = Path(args.dir)
        d.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(x):
            viz.save_image(img.permute(1, 2, 0).numpy(), d / f"{i:06d}.png")
        print(f"{d}/ ({len(x)} images)")
    return 0


def _parse_layers(text: str) -> tuple[int, int]:
    """'A:B' -> (A, B); the range itself is checked against the run's generator."""
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise _err(f"--mix-layers {text!r}: expected A:B, two whole numbers (style inputs A to B-1), "
                   "e.g. --mix-layers 0:4") from None
    return a, b


def _cmd_project(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.project(args.run, args.image, args.out, steps=args.steps, lr=args.lr, restarts=args.restarts,
                    space=args.space, feature_weight=args.feature_weight, label=args.label, resize=args.resize,
                    seed=args.seed, overwrite=args.overwrite, device=args.device, ema=not args.no_ema,
                    command=_command(args))
    print(f"projected {args.image} into {r['space']} ({r['steps']} steps, {r['restarts']} restart"
          f"{'s' if r['restarts'] > 1 else ''}): loss {r['loss_start']:.4g} -> {r['loss_end']:.4g}, "
          f"PSNR {r['psnr']:.2f} dB")
    print(f"wrote {r['out']}/ (projected.png, target.png, latent.npz, project.json)")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.translate(args.run, args.input, args.out, args.direction, strict=args.strict,
                      overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    print(f"translated {_done(r)} ({r['direction']}): {r['out']}")
    return 0


def _cmd_superres(args: argparse.Namespace) -> int:
    from gankit import api

    r = api.superres(args.run, args.input, args.out, args.scale, args.tile, args.overlap, strict=args.strict,
                     overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    print(f"upscaled {_done(r)} x{r['scale']}: {r['out']}")
    return 0


def _cmd_repair(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.tasks.generate.invert import InvertSettings
    from gankit.tasks.inpaint.infer import parse_box

    box = parse_box(args.box) if args.box else None
    settings = InvertSettings(restarts=args.restarts, steps=args.steps, prior=args.prior, seed=args.seed)
    r = api.repair(args.run, args.input, args.out, args.mask, box, args.method, settings, show=args.show,
                   resize_mask=args.resize_mask, strict=args.strict, overwrite=args.overwrite, device=args.device,
                   ema=not args.no_ema)
    print(f"repaired {_done(r)} ({r['method']}): {r['out']}" + (f"  (side by side: {r['show']})" if "show" in r else ""))
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit import api

    fill = None
    if args.fill or args.frames:
        if not (args.fill and args.frames):
            raise _err("--fill and --frames go together: --fill --frames 10,11,40")
        try:
            fill = [int(v) for v in args.frames.split(",") if v.strip()]
        except ValueError:
            raise _err(f"--frames {args.frames!r}: expected frame numbers separated by commas, e.g. 10,11,40") from None
    r = api.interpolate(args.run, args.input, args.out, args.factor, fill, strict=args.strict,
                        overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    done = f"filled frames {','.join(map(str, r['filled']))}" if r["filled"] else f"x{r['factor']} frame rate"
    print(f"{done}: {r['n']} frames at {r['fps']:g} fps: {r['out']}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gankit.report import compare_reports, write_report

    if len(args.runs) == 1:
        print(write_report(args.runs[0], args.out))
    else:
        print(compare_reports(args.runs, args.out or "compare.html"))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from gankit.apps.serve import serve

    if not 0 <= args.port <= 65535:
        raise _err(f"--port {args.port}: expected 0 (a free port) to 65535")
    if not args.max_upload_mb > 0:
        raise _err(f"--max-upload-mb {args.max_upload_mb:g}: expected a size in MB > 0")
    if args.max_samples < 1:
        raise _err(f"--max-samples {args.max_samples}: expected a number >= 1")
    serve(args.run, host=args.host, port=args.port, device=args.device, ema=not args.no_ema,
          max_upload_mb=args.max_upload_mb, max_samples=args.max_samples)
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
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


def _cmd_augment_eval(args: argparse.Namespace) -> int:
    import shlex

    from gankit import api

    r = api.augment_eval(args.out, args.n, args.data, args.test, args.ratios, quick=args.quick, seeds=args.seeds,
                         gan_steps=args.gan_steps, clf_steps=args.clf_steps, val_fraction=args.val_fraction,
                         device=args.device, gan_overrides=args.gan_overrides,
                         command=shlex.join(["gankit", *args.argv]))
    print(r["summary"])
    print(f"table: {r['files']['table']}  plot: {r['files']['plot']}  json: {r['files']['json']}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from gankit.export import export_generator

    weights, sidecar = export_generator(args.run, args.out, ema=not args.no_ema)
    print(f"weights: {weights}")
    print(f"sidecar: {sidecar}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from gankit import api

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    result = api.evaluate(args.target, metrics, args.n, args.ref, args.seed, args.featurenet, args.device,
                          ema=not args.no_ema, inception_weights=args.inception_weights, floor=args.floor)
    _print_result(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"json:       {args.json}")
    return 0


def _print_scored(r: dict, indent: str = "") -> None:
    """A task's held-out scores ({method: {metric: value}}, maybe one level deeper, as the inpaint
    task's {hole kind: {method: ...}}): one line per method, then the protocol."""
    for k, v in r.items():
        if k == "protocol":
            continue
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
            print(f"{indent}{k}:")
            _print_scored(v, indent + "  ")
        elif isinstance(v, dict):
            print(f"{indent}{k:<14} " + "  ".join(f"{m} {x:.4f}" if isinstance(x, float) else f"{m} {x}"
                                                  for m, x in v.items()))
        else:
            print(f"{indent}{k:<14} {v:.4f}" if isinstance(v, float) else f"{indent}{k:<14} {v}")
    if not indent and "protocol" in r:
        p = r["protocol"]
        print("protocol:      " + "; ".join(f"{k} {v}" for k, v in p.items() if v is not None))


def _print_result(r: dict) -> None:
    def line(k, v):
        print(f"{k:<11} {v}")

    if "seed" not in r.get("protocol", {}):
        return _print_scored(r)  # a task scored on held-out data (translate, superres, interpolate, inpaint)

    for key in ("fid", "fid_inception", "is", "precision", "recall", "density", "coverage", "class_kl", "modes", "hq"):
        if key in r:
            v = r[key]
            line(key, f"{v:.4f}" if isinstance(v, float) else (f"{v} / {r['n_modes']}" if key == "modes" else v))
    if "kid" in r:
        line("kid", f"{r['kid']['mean']:.5f} +- {r['kid']['std']:.5f}")
    if "class_hist" in r:
        line("class_hist", " ".join(f"{v:.3f}" for v in r["class_hist"]))
    if "d_acc" in r:
        line("d_acc", f"real {r['d_acc']['real']:.3f}  fake {r['d_acc']['fake']:.3f}")
    p = r["protocol"]
    net = f"{p['feature_net']} (sha256 {p['feature_net_sha256'][:12]}...), " if "feature_net" in p else ""
    print(f"protocol:   {net}{p['n']} samples vs {p['ref']}" + (f" ({p['ref_n']})" if "ref_n" in p else "")
          + f", seed {p['seed']}" + (f", run {p['run']} step {p['step']}" if p.get("run") else ""))


def _cmd_features_train(args: argparse.Namespace) -> int:
    from gankit.data import load_data
    from gankit.metrics.featurenet import save_featurenet, train_featurenet

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise _err(f"--out {out}: expected a .safetensors path")
    data = load_data(args.data, args.resolution)
    test = load_data(args.test, args.resolution or data.shape[-1], data.shape[0]) if args.test else None
    if args.epochs < 1 or args.batch < 1:
        raise _err("--epochs and --batch must be >= 1")
    net, meta = train_featurenet(data, test, epochs=args.epochs, batch=min(args.batch, len(data)), seed=args.seed,
                                 log=lambda s: print(s, file=sys.stderr))
    meta["command"] = "gankit features train " + " ".join(sys.argv[3:])
    save_featurenet(net, out, meta)
    acc = meta.get("test_accuracy")
    print(f"feature net: {out} (test accuracy {acc:.4f})" if acc is not None else f"feature net: {out}")
    print(f"use it:      gankit eval RUN --featurenet {out} --ref {args.test or args.data}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from gankit.bench import run_bench

    if args.seconds <= 0:
        raise _err(f"--seconds {args.seconds}: expected a number > 0")
    if args.rounds < 1:
        raise _err(f"--rounds {args.rounds}: expected a number of rounds >= 1")
    if args.profile < 0:
        raise _err(f"--profile {args.profile}: expected a number of steps >= 1 (0: off)")
    r = run_bench(args.preset, args.device, args.batch, args.seconds, args.data, args.precision,
                  args.overrides, args.rounds, args.profile, args.profile_dir)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['preset']} on {r['device']}, batch {r['batch']}, gankit in {r['precision']}, {args.seconds:g} s each")
    print(f"{'':<10} {'steps/s':>10} {'images/s':>12} {'peak MiB':>10}")
    for name in ("reference", "gankit"):
        v = r[name]
        # On CPU the measure is growth of the process's peak RSS; 0 means "below the reference's peak"
        mem = "<= ref" if r["device"] == "cpu" and name == "gankit" and not v["peak_mem_bytes"] \
            else f"{v['peak_mem_bytes'] / 2**20:.1f}"
        print(f"{name:<10} {v['steps_per_s']:>10.1f} {v['images_per_s']:>12.0f} {mem:>10}")
    print(f"ratio      {r['ratio']:.2f}x  (median of {len(r['ratio_rounds'])} alternating rounds: "
          f"{', '.join(f'{x:.2f}' for x in r['ratio_rounds'])})")
    print(f"gankit {r['step_mode']}")
    if "profile" in r:
        print(r["profile"]["table"] or "")
        print(f"profile:   {r['profile']['trace']} (open in Perfetto or TensorBoard); table: {r['profile']['top_ops']}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from gankit.config import preset_description, preset_names, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def _class_counts(labels: list[int], classes: list[str]) -> str:
    """'K: name count, ...' for `gankit data info`."""
    from collections import Counter

    counts = Counter(labels)
    return f"{len(classes)}: " + ", ".join(f"{c} {counts[i]}" for i, c in enumerate(classes))


def _text_info(source: str) -> int:
    from gankit.data.corpus import load_text

    data = load_text(source, "char", 10_000)
    lengths = sorted(len(ln) for ln in data.lines)
    print(f"source:   {data.name} (text)")
    print(f"count:    {len(data)} lines, {lengths[0]} to {lengths[-1]} characters (median {lengths[len(lengths) // 2]})")
    print(f"tokens:   {len(data.vocab) - 4} characters, {len({w for ln in data.lines for w in ln.split()})} words")
    if data.y is not None:
        print(f"topics:   {_class_counts(data.y.tolist(), data.classes)}")
    for n in data.notes:
        print(f"note:     {n}")
    for ln in data.lines[:5]:
        print(f"example:  {ln}")
    return 0


def _audio_info(source: str) -> int:
    from gankit.data.speech import load_audio

    data = load_audio(source)
    print(f"source:   {data.name} (audio)")
    print(f"count:    {len(data)} clips of {data.x.shape[1]} samples at {data.rate} Hz, int16")
    if data.y is not None:
        print(f"classes:  {_class_counts(data.y.tolist(), data.classes)}")
    for n in data.notes:
        print(f"note:     {n}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from gankit import viz
    from gankit.data import load_data
    from gankit.util import cache_dir

    if args.source.split(":")[0] == "fortunes" or args.source.removesuffix(":test").endswith(".txt"):
        return _text_info(args.source)
    if args.source.split(":")[0] == "spoken-digits":
        return _audio_info(args.source)
    data = load_data(args.source, args.resolution, args.channels)
    x = data.x
    print(f"source:   {data.name}")
    print(f"count:    {len(data)}")
    print(f"shape:    {tuple(data.shape)} ({'C, H, W' if data.kind == 'image' else '2-D points'}), "
          f"dtype {str(x.dtype).removeprefix('torch.')}")
    print(f"range:    [{_num(x.min())}, {_num(x.max())}]")
    if data.y is None:
        print("classes:  none (unlabelled)")
    else:
        counts = np.bincount(data.y.numpy(), minlength=len(data.classes or []))
        listed = ", ".join(f"{c}:{n}" for c, n in zip(data.classes or range(len(counts)), counts))
        print(f"classes:  {len(counts)} ({listed if len(counts) <= 30 else f'{listed[:200]}...'})")
    for note in data.notes:
        print(f"note:     {note}")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in data.name).strip("_") or "data"
    preview = Path(args.preview) if args.preview else cache_dir() / "previews" / f"{safe}.png"
    if data.kind == "points":
        viz.save_scatter(x[:4096], preview, title=data.name)
    else:
        viz.save_grid(x[:64], preview)
    print(f"preview:  {preview}")
    return 0


# -- helpers --------------------------------------------------------------------------------

def _flag_overrides(args: argparse.Namespace) -> list[str]:
    """The convenience flags as `--set` strings, so one code path validates everything."""
    flags = {"data.source": args.data, "train.steps": args.steps, "train.batch": args.batch, "seed": args.seed,
             "device": args.device, "eval.every": args.eval_every,
             "train.max_seconds": getattr(args, "max_seconds", None)}
    out = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.no_progress:
        out.append("log.progress=false")
    if args.strict_data:
        out.append("data.strict=true")
    if getattr(args, "profile", None) is not None:
        out.append(f"log.profile={args.profile}")
    return out


def _command(args: argparse.Namespace) -> str:
    """The command line as the user typed it, for train.log and the report."""
    import shlex

    return shlex.join(["gankit", *args.argv])


def _report(run) -> None:
    if run is None:  # a data-parallel rank other than 0: rank 0 reports
        return
    if run.interrupted:
        print(f"gankit: stopped by {run.interrupted} at step {run.step} of {run.config.train.steps}; "
              f"checkpoint written. Resume with: gankit train --resume {run.dir}", file=sys.stderr)
    print(f"{'samples:  ' if run.task == 'generate' else 'grids:    '} {run.last_grid}")
    print(f"loss plot: {run.loss_plot}")
    print(f"animation: {run.animation}")
    if (run.dir / "metrics.png").exists():
        print(f"metrics:   {run.dir / 'metrics.png'}")
    if (run.dir / "report.html").exists():
        print(f"report:    {run.dir / 'report.html'}")
    if (run.dir / "checkpoints" / "best.pt").exists():
        print(f"best:      {run.dir / 'checkpoints' / 'best.pt'} (the best evaluation: lowest FID, or highest PSNR for superres / interpolate / inpaint)")
    use = {"translate": f"gankit translate {run.dir} INPUT --out OUTPUT",
           "superres": f"gankit superres {run.dir} INPUT --out OUTPUT",
           "interpolate": f"gankit interpolate {run.dir} VIDEO --out OUTPUT --factor 2",
           "inpaint": f"gankit repair {run.dir} IMAGE --mask MASK.png --out fixed.png",
           "text": f"gankit sample {run.dir} --n 20 --temperature 0.8",
           "audio": f"gankit sample {run.dir} --n 10 --wav clips/"}.get(
        run.task, f"gankit sample {run.dir} --n 64 --out grid.png")
    print(f"run:       {run.dir}  ({use})")


def _num(v) -> str:
    v = v.item()
    return f"{v:g}" if isinstance(v, float) else str(v)


def _err(msg: str):
    from gankit.errors import GankitError

    return GankitError(msg)


if __name__ == "__main__":
    sys.exit(main())
