"""Image-to-image translation against its baselines, on the held-out splits, one command.

    .venv/bin/python benchmarks/translation.py --out runs/bench-translate --json BENCH.json
    .venv/bin/python benchmarks/translation.py --only pix2pix --steps-pix2pix 300   # quicker

What is measured (CPU unless --device cuda; budgets are training steps of the shipped presets):

1. pix2pix on edges2mnist, the paper's ablation: the `pix2pix` preset with L1 only
   (`translate.gan=0`) and with L1 + cGAN (the preset), the same steps and seed; beside them a
   classical baseline with no learning: a morphological closing of the edge map
   (scipy.ndimage.binary_closing, 3x3, once), which bridges the two outlines of each stroke. Scores: L1,
   PSNR, SSIM against the real digits, the feature network's label accuracy on the outputs (and on
   the real digits: the ceiling), FID against the real test digits (gankit.metrics.translation).
2. CycleGAN on mnist2mnistm: the `cyclegan` preset; the feature network's accuracy on MNIST-M
   test digits translated to MNIST style (G_ba) against its accuracy on the raw MNIST-M digits
   (the identity map), and FIDs in both directions.

Writes each run directory under --out, a side-by-side grid per method (docs/img/ with
--figures), a table on stdout and --json with every number, the command, the machine (CPU model,
torch's CPU capability, threads) and the seconds each run took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import gankit
from _machine import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit import viz
from gankit.config import load_config
from gankit.data.dataset import convert_channels
from gankit.data.pairs import load_pairs
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.translation import domain_fid, label_accuracy, paired_scores
from gankit.tasks.translate.evaluation import evaluate_translation
from gankit.tasks.translate.infer import translate_images


def classical_edges_to_digits(edges: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) edge maps -> digits without learning: a morphological closing (3x3,
    once) bridges the two outlines of each stroke. Chosen on 3,000 *training* pairs over
    hole filling + dilation and closings of 1-3 iterations (closing once had the best L1, PSNR,
    SSIM and label accuracy there)."""
    out = np.empty_like(edges.numpy())
    for i, e in enumerate(edges.numpy()[:, 0] > 127):
        out[i, 0] = ndimage.binary_closing(e, np.ones((3, 3), bool)) * 255
    return torch.from_numpy(out)


def train(preset: str, out: Path, steps: int, device: str, sets: list[str]) -> tuple[gankit.Run, float]:
    cfg = load_config(preset, overrides=[f"train.steps={steps}", f"device={device}", "log.progress=false",
                                         f"log.grid_every={max(1, steps // 6)}", *sets])
    t0 = time.perf_counter()
    run = gankit.train(cfg, str(out))
    return run, time.perf_counter() - t0


def pix2pix(args, res: dict) -> None:
    test = load_pairs("edges2mnist", "test")
    ev = Evaluator(None, "cpu")
    edges, digits, labels = test.a, test.b, test.y_b
    base = classical_edges_to_digits(edges)
    row = {**paired_scores(base, digits), "label_acc": label_accuracy(base, labels, ev),
           "fid": domain_fid(base, digits, ev)}
    res["pix2pix"] = {"classical closing": row, "n": len(edges),
                      "ceiling_label_acc": label_accuracy(digits, labels, ev)}
    grids = {"input": edges[:8], "classical closing": base[:8], "target": digits[:8]}
    for name, sets in (("L1 only", ["translate.gan=0"]), ("L1 + cGAN", [])):
        run, secs = train("pix2pix", args.out / f"pix2pix-{'l1' if sets else 'cgan'}", args.steps_pix2pix,
                          args.device, sets)
        r = evaluate_translation(run.config, run.nets, len(edges), "cpu")
        res["pix2pix"][name] = {k: r[k] for k in ("l1", "psnr", "ssim", "label_acc", "fid")} | {
            "train_seconds": round(secs, 1), "steps": run.step, "run": str(run.dir)}
        grids[name] = translate_images(run, edges[:8])
        print(f"pix2pix {name}: {res['pix2pix'][name]}", file=sys.stderr)
    if args.figures:  # one column per method: input, classical, L1, L1 + cGAN, target
        order = ["input", "classical closing", "L1 only", "L1 + cGAN", "target"]
        cells = torch.stack([grids[k][i] for i in range(8) for k in order])
        viz.save_grid(cells, args.figures / "pix2pix-ablation.png", nrow=len(order))


def cyclegan(args, res: dict) -> None:
    run, secs = train("cyclegan", args.out / "cyclegan", args.steps_cyclegan, args.device, [])
    r = evaluate_translation(run.config, run.nets, 5000, "cpu")
    res["cyclegan"] = {k: v for k, v in r.items() if k != "protocol"} | {
        "train_seconds": round(secs, 1), "steps": run.step, "run": str(run.dir), "protocol": r["protocol"]}
    print(f"cyclegan: {res['cyclegan']}", file=sys.stderr)
    if args.figures:
        test = load_pairs("mnist2mnistm", "test")
        b = test.b[:8]
        ba = translate_images(run, b, "BtoA")
        a = test.a[:8]
        ab = translate_images(run, a, "AtoB")
        cells = torch.stack([x for i in range(8) for x in (convert_channels(a[i:i + 1], 3)[0], ab[i], b[i],
                                                            convert_channels(ba[i:i + 1], 3)[0])])
        viz.save_grid(cells, args.figures / "cyclegan-mnist2mnistm.png", nrow=4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-translate"))
    p.add_argument("--steps-pix2pix", type=int, default=1500)
    p.add_argument("--steps-cyclegan", type=int, default=2000)
    p.add_argument("--only", choices=("pix2pix", "cyclegan"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--figures", type=Path, help="write the comparison grids into this folder")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if args.only in (None, "pix2pix"):
        pix2pix(args, res)
    if args.only in (None, "cyclegan"):
        cyclegan(args, res)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
