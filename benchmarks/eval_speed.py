"""Wall time of `gankit eval` on 10,000 MNIST-sized samples, reference statistics cached.

    .venv/bin/python benchmarks/eval_speed.py [--repeats 3]

Writes 10,000 real MNIST training images as a samples .npz (what a generator would hand over),
warms the reference cache once, then times the whole command (process start, torch import,
features, all default metrics) --repeats times and prints the median. Then prints the
real-against-real floor (`gankit eval --floor`) as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gankit.data import load_data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    gankit = [sys.executable, "-m", "gankit"]
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.npz"
        np.savez(samples, x=load_data("mnist").x[:10_000].numpy())
        subprocess.run([*gankit, "eval", str(samples), "--n", "10000"], check=True, capture_output=True)  # warm cache
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run([*gankit, "eval", str(samples), "--n", "10000"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        floor = Path(tmp) / "floor.json"
        subprocess.run([*gankit, "eval", "--floor", "--json", str(floor)], check=True, capture_output=True)
        print(json.dumps({"eval_10k_wall_s_median": round(statistics.median(times), 1),
                          "eval_10k_wall_s": [round(t, 1) for t in times]}))
        print(floor.read_text())


if __name__ == "__main__":
    main()
