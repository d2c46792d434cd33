"""Mode coverage of the toy-capable presets on ring8 and grid25, at a fixed CPU step budget.

    .venv/bin/python benchmarks/toy_modes.py --steps 3000 [--only toy-mlp]

For each (configuration, dataset): train from seed 0, draw 2,500 samples (seed 1), report modes
covered and the share of high-quality samples (gankit.metrics.toy: within 3 std of a mode).
Prints one JSON object per line; BENCHMARKS.md records the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import gankit
from gankit.metrics.toy import mode_stats

# (name, preset, overrides): the toy-capable presets, then toy-mlp with each loss and stabiliser
CONFIGS = [
    ("seed-mlp", "seed-mlp", []),
    ("mlp-bn", "mlp-bn", []),
    ("toy-mlp", "toy-mlp", []),
    ("toy-mlp + ema", "toy-mlp", ["train.ema=true"]),
    ("toy-mlp, ls", "toy-mlp", ["train.loss=ls"]),
    ("toy-mlp, hinge", "toy-mlp", ["train.loss=hinge"]),
    ("toy-mlp, ragan", "toy-mlp", ["train.loss=ragan"]),
    ("toy-mlp, wgan-gp", "toy-mlp", ["train.loss=wasserstein", "reg.gp=0.1", "train.n_critic=5",
                                     "train.betas=[0.0,0.9]"]),
    ("toy-mlp, r1 0.1", "toy-mlp", ["reg.r1=0.1", "reg.r1_every=1"]),
    ("toy-r1", "toy-r1", []),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--only", help="run only the configurations whose name contains this")
    p.add_argument("--data", default="ring8,grid25")
    args = p.parse_args()
    for name, preset, sets in CONFIGS:
        if args.only and args.only not in name:
            continue
        for data in args.data.split(","):
            cfg = gankit.load_config(preset, overrides=[
                *sets, f"data.source={data}", "data.resolution=null", "data.channels=null",
                f"train.steps={args.steps}", "log.progress=false", f"log.grid_every={args.steps}",
                f"log.ckpt_every={args.steps}", "device=cpu"])
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = gankit.train(cfg, f"{tmp}/run")
                secs = time.perf_counter() - t0
                s = mode_stats(run.sample(2500, seed=1), data)
            print(json.dumps({"config": name, "data": data, "steps": args.steps, "modes": s["modes"],
                              "n_modes": s["n_modes"], "hq": round(s["hq"], 3), "train_s": round(secs, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
