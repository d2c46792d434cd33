"""FID of every image preset on MNIST after a fixed CPU step budget, with its sample grid.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mnist_presets.py --steps 200 [--only dcgan]

Each preset trains from seed 0 for --steps steps (its own batch size and n_critic), then is
evaluated with the bundled feature network: --n generated samples (seed 0) against the 10,000
MNIST test images. The grid (64 samples, seed 0) goes to docs/img/presets/PRESET.png. One JSON
object per line; BENCHMARKS.md records the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import gankit
from gankit import viz
from gankit.config import preset_names
from gankit.metrics.evaluate import Evaluator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--only")
    p.add_argument("--grids", default="docs/img/presets")
    p.add_argument("--set", dest="sets", action="append", default=[], help="extra config overrides")
    args = p.parse_args()
    ev = Evaluator()
    for preset in preset_names():
        if preset.startswith("toy-") or (args.only and preset not in args.only.split(",")):
            continue
        if gankit.load_config(preset).task != "generate":  # translation presets: benchmarks/translation.py
            continue
        cfg = gankit.load_config(preset, overrides=[f"train.steps={args.steps}", "log.progress=false",
                                                    f"log.grid_every={args.steps}", f"log.ckpt_every={args.steps}",
                                                    "device=cpu", *args.sets])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = gankit.train(cfg, f"{tmp}/run")
            secs = time.perf_counter() - t0
            r = ev.evaluate(run.sample(args.n, seed=0), ["fid", "pr", "classes"], seed=0, step=run.step)
            grid = run.sample_by_class(6, seed=0) if run.conditional else run.sample(64, seed=0)
            viz.save_grid(grid, f"{args.grids}/{preset}.png", nrow=6 if run.conditional else None)
        print(json.dumps({"preset": preset, "sets": args.sets, "steps": args.steps, "batch": cfg.train.batch,
                          "n_critic": cfg.train.n_critic, "train_s": round(secs, 1), "fid": round(r["fid"], 2),
                          "precision": round(r["precision"], 3), "recall": round(r["recall"], 3),
                          "class_kl": round(r["class_kl"], 3), "n": args.n, "ema": run.ema}), flush=True)


if __name__ == "__main__":
    main()
