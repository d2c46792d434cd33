"""Image repair against the classical baselines, and its speed.

    .venv/bin/python benchmarks/inpaint.py --out runs/bench-inpaint --figures docs/img --json BENCH.json

What is measured (CPU, seed 0):
1. MNIST: the `inpaint` preset trained on mnist, and a `dcgan` run (for repair by inversion), each
   for a stated number of steps; then on the first `--n` held-out digits, per hole kind (boxes of
   25% and 50% of the area, free-form strokes; `gankit.tasks.inpaint.evaluation`, fixed seeds):
   PSNR / SSIM / L1 in the hole, the feature network's label accuracy and FID of the repaired
   digits, for the learned inpainter, inversion, Telea, Navier-Stokes, biharmonic and mean fill.
2. Photos: the `inpaint` preset on 64 px crops of the train photos, scored on crops of the
   held-out photos (no feature network exists for photos: hole PSNR / SSIM / L1 only).
3. Speed: images repaired per second by the learned inpainter at 28 x 28 (the MNIST run) and
   256 x 256 (the photos run, fully convolutional), and by inversion at 28 x 28 (the dcgan run)
   and 64 x 64 RGB (a dcgan generator built for 64 px, untrained: the cost does not depend on the
   weights; gankit has no generator above 64 px to invert), with the restarts and steps stated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import gankit
from _machine import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit import viz
from gankit.config import load_config
from gankit.data.dataset import convert_channels
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.inpaint import BASELINES, hole_scores
from gankit.metrics.translation import domain_fid, label_accuracy
from gankit.tasks.generate.invert import InvertSettings, invert
from gankit.tasks.inpaint.evaluation import EVAL_MASKS, complete, damaged_view, evaluate_inpaint, fixed_masks, held_out

QUIET = ["log.progress=false", "device=cpu"]


def train(preset: str, out: Path, steps: int, *extra: str):
    cfg = load_config(preset, overrides=[f"train.steps={steps}", *QUIET, *extra])
    t0 = time.perf_counter()
    run = gankit.train(cfg, str(out))
    return gankit.load(str(run.dir)), round(time.perf_counter() - t0, 1)


def invert_scores(gen, x, y, settings, ev) -> dict:
    """Inversion on each hole kind of EVAL_MASKS, scored as evaluate_inpaint scores the others."""
    res = {}
    for kind in EVAL_MASKS:
        masks = fixed_masks(kind, len(x), *x.shape[-2:])
        t0 = time.perf_counter()
        out, info = invert(gen, x, masks, settings)
        r = hole_scores(out, x, masks)
        r["label_acc"], r["fid"] = label_accuracy(out, y, ev), domain_fid(out, x, ev)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        r["context_start"] = sum(info["context_start"]) / len(x)
        r["context_end"] = sum(info["context_end"]) / len(x)
        res[kind] = r
    return res


def speed_learned(run, side: int, n: int = 32) -> float:
    c = run.data_meta["shape"][0]
    x = torch.randint(0, 256, (n, c, side, side), dtype=torch.uint8)
    m = fixed_masks("mixed", n, side, side)
    complete(run.nets["G"], x[:2], m[:2])  # warm-up
    t0 = time.perf_counter()
    complete(run.nets["G"], x, m, batch=8)
    return round(n / (time.perf_counter() - t0), 2)


def speed_invert(gen, side: int, settings: InvertSettings, n: int = 4) -> float:
    c = gen.data_meta["shape"][0]
    x = torch.randint(0, 256, (n, c, side, side), dtype=torch.uint8)
    m = fixed_masks("box:0.25", n, side, side)
    t0 = time.perf_counter()
    invert(gen, x, m, settings)
    return round(n / (time.perf_counter() - t0), 4)


def speed(out: Path, inp, photo, gen) -> dict:
    default = InvertSettings()
    # gankit's convolutional generators go up to 64 px (model.arch dcgan / resnet): inversion at
    # 256 px has no generator to invert yet; 64 px is the largest measured
    g64, _ = train("dcgan", out / "dcgan64", 1, "data.source=fake:3x64x64:64", "data.resolution=null",
                   "train.batch=2")
    return {
        "learned 28x28 images/s": speed_learned(inp, 28),
        "learned 256x256 images/s": speed_learned(photo, 256),
        f"invert 28x28 images/s ({default.restarts} restarts x {default.steps} steps, the defaults)":
            speed_invert(gen, 28, default),
        f"invert 64x64 RGB images/s ({default.restarts} restarts x {default.steps} steps; an untrained 64 px dcgan)":
            speed_invert(g64, 64, default, n=2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-inpaint"))
    p.add_argument("--steps-mnist", type=int, default=2000)
    p.add_argument("--steps-gen", type=int, default=2000)
    p.add_argument("--steps-photos", type=int, default=1500)
    p.add_argument("--n", type=int, default=1000, help="held-out digits per hole kind")
    p.add_argument("--n-invert", type=int, default=200, help="of those, digits repaired by inversion too")
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--invert-steps", type=int, default=100)
    p.add_argument("--figures", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--speed-only", action="store_true",
                   help="only the speed part, on the runs already trained under --out; merged into --json")
    args = p.parse_args()
    if args.speed_only:
        res = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
        res["speed"] = speed(args.out, gankit.load(str(args.out / "mnist")), gankit.load(str(args.out / "photos")),
                             gankit.load(str(args.out / "dcgan")))
        res["speed_command"], res["speed_machine"] = " ".join(sys.argv), machine()
        print(json.dumps(res["speed"], indent=1))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")
        return
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d")}

    inp, secs = train("inpaint", args.out / "mnist", args.steps_mnist)
    res["train"] = {"inpaint mnist": {"steps": args.steps_mnist, "seconds": secs}}
    gen, secs = train("dcgan", args.out / "dcgan", args.steps_gen)
    res["train"]["dcgan mnist"] = {"steps": args.steps_gen, "seconds": secs}
    print(f"trained: {res['train']}", file=sys.stderr)

    t0 = time.perf_counter()
    res["mnist"] = evaluate_inpaint(inp.config, inp.nets["G"], n=args.n)
    res["mnist"]["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"mnist: {json.dumps(res['mnist'], default=str)}", file=sys.stderr)

    # inversion on the first n_invert digits, beside every other method on the same digits
    test = held_out(inp.config)
    x, y = test.x[:args.n_invert], test.y[:args.n_invert]
    settings = InvertSettings(restarts=args.restarts, steps=args.invert_steps)
    ev = Evaluator()
    res["mnist_invert_subset"] = evaluate_inpaint(inp.config, inp.nets["G"], n=args.n_invert)
    for kind, r in invert_scores(gen, x, y, settings, ev).items():
        res["mnist_invert_subset"][kind]["invert"] = r
    res["mnist_invert_subset"]["settings"] = vars(settings) if hasattr(settings, "__dict__") else str(settings)
    print(f"invert: {json.dumps(res['mnist_invert_subset'], default=str)}", file=sys.stderr)

    photo, secs = train("inpaint", args.out / "photos", args.steps_photos, "data.source=photos", "train.batch=16")
    res["train"]["inpaint photos"] = {"steps": args.steps_photos, "seconds": secs}
    res["photos"] = evaluate_inpaint(photo.config, photo.nets["G"], n=500)
    print(f"photos: {json.dumps(res['photos'], default=str)}", file=sys.stderr)

    if args.figures:  # per row: damaged | telea | navier-stokes | biharmonic | mean fill | invert | learned | original
        args.figures.mkdir(parents=True, exist_ok=True)
        k = 8
        xs, masks = x[:k], fixed_masks("box:0.5", args.n_invert, 28, 28)[:k]
        damaged = torch.where(masks, torch.zeros_like(xs), xs)
        outs = [damaged_view(xs, masks)] + [f(damaged, masks) for f in BASELINES.values()]
        outs += [invert(gen, xs, masks, settings)[0], complete(inp.nets["G"], xs, masks), xs]
        cells = [convert_channels(o[i:i + 1], 3)[0] for i in range(k) for o in outs]
        viz.save_grid(torch.stack(cells), args.figures / "inpaint_mnist.png", nrow=len(outs))
        pt = held_out(photo.config).x[:6]
        pm = fixed_masks("stroke", len(pt), *pt.shape[-2:])
        pd = torch.where(pm, torch.zeros_like(pt), pt)
        outs = [damaged_view(pt, pm)] + [f(pd, pm) for f in BASELINES.values()] + [complete(photo.nets["G"], pt, pm), pt]
        cells = [o[i] for i in range(len(pt)) for o in outs]
        viz.save_grid(torch.stack(cells), args.figures / "inpaint_photos.png", nrow=len(outs))

    res["speed"] = speed(args.out, inp, photo, gen)
    print(f"speed: {res['speed']}", file=sys.stderr)
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
