"""Training throughput of a preset: steps/s of the real training loop, read from metrics.jsonl.

    .venv/bin/python benchmarks/train_speed.py --preset seed-mlp --steps 1000

Runs `gankit.train` in-process (MNIST, no progress bar) and reports the median steps/s over the
log windows after the first (which includes warm-up), plus whole-run wall time. Results go in
BENCHMARKS.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import torch

import gankit
from gankit.data import load_data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="seed-mlp")
    p.add_argument("--data", default="mnist")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int)
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    sets = [f"train.steps={args.steps}", f"data.source={args.data}", f"device={args.device}",
            "log.progress=false", "log.every=50", f"log.grid_every={args.steps}",
            f"log.ckpt_every={args.steps}"]
    if args.batch:
        sets.append(f"train.batch={args.batch}")
    cfg = gankit.load_config(args.preset, overrides=sets)
    load_data(cfg.data.source)  # convert and cache the data outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = gankit.train(cfg, os.path.join(tmp, "run"))
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in open(os.path.join(tmp, "run", "metrics.jsonl"))]
    rates = [r["steps_per_s"] for r in rows[1:]] or [rows[0]["steps_per_s"]]
    print(json.dumps({
        "preset": args.preset, "data": args.data, "device": str(run.device), "batch": cfg.train.batch,
        "steps": args.steps, "steps_per_s_median": round(statistics.median(rates), 2),
        "steps_per_s_min": round(min(rates), 2), "steps_per_s_max": round(max(rates), 2),
        "images_per_s_median": round(statistics.median(rates) * cfg.train.batch),
        "wall_s": round(wall, 1), "torch": str(torch.__version__), "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }))


if __name__ == "__main__":
    main()
