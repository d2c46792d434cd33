"""Frame interpolation against its two classical baselines, and its speed.

    .venv/bin/python benchmarks/interpolate.py --out runs/bench-interp --figures docs/img --json BENCH.json

What is measured (CPU; the `frame-interp` preset, seed 0): PSNR and SSIM of the predicted middle
frames of held-out triplets (`gankit.tasks.interpolate.evaluation`), beside the average of the two
neighbours and Farneback optical flow warped halfway (`gankit.metrics.frames`), on
`moving-mnist:test` (3,600 triplets) and `pans:test` (700 triplets of the held-out photos); then
frames per second of `gankit interpolate --factor 2` on a generated clip at 64 x 64 and at
256 x 256, and the process's peak memory (VmHWM), each in its own process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import gankit
from _machine import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit import viz
from gankit.config import load_config
from gankit.data.dataset import convert_channels
from gankit.metrics.frames import blend, flow_warp
from gankit.tasks.interpolate.evaluation import evaluate_interpolation, held_out, predict_all


SPEED = """
import sys, time, numpy as np
side, run, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from gankit.media import VideoWriter
g = np.random.default_rng(0)
with VideoWriter(tmp + "/in.mp4", 25) as w:
    for i in range(17):
        w.write((g.random((side, side, 3)) * 255).astype(np.uint8))
import gankit
from gankit.tasks.interpolate.infer import interpolate_video
r = gankit.load(run)
t0 = time.perf_counter()
out = interpolate_video(r, tmp + "/in.mp4", tmp + "/out.mp4", factor=2)
secs = time.perf_counter() - t0
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
print(16 / secs, hwm / 1024, secs)  # 16 new frames
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-interp"))
    p.add_argument("--steps-mnist", type=int, default=1500)
    p.add_argument("--steps-pans", type=int, default=800)
    p.add_argument("--figures", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    runs = {}
    for source, steps in (("moving-mnist", args.steps_mnist), ("pans", args.steps_pans)):
        cfg = load_config("frame-interp", overrides=[f"data.source={source}", f"train.steps={steps}",
                                                     "log.progress=false", "device=cpu"])
        t0 = time.perf_counter()
        run = gankit.train(cfg, str(args.out / source))
        secs = time.perf_counter() - t0
        r = evaluate_interpolation(run.config, run.nets["G"])
        res[source] = {**r, "train_seconds": round(secs, 1), "steps": steps}
        runs[source] = run
        print(f"{source}: {r} ({secs:.0f} s)", file=sys.stderr)
    if args.figures:  # per row: previous | blend | flow warp | gankit | true middle | next
        args.figures.mkdir(parents=True, exist_ok=True)
        cells = []
        for source, run in runs.items():
            test = held_out(run.config)
            idx = torch.linspace(0, len(test) - 1, 4).long()
            prev, mid, nxt = test.prev[idx], test.mid[idx], test.next[idx]
            pred = predict_all(run.nets["G"], prev, nxt, run.config.interpolate)
            for i in range(len(idx)):
                cells += [convert_channels(t[i:i + 1], 3)[0] for t in (prev, blend(prev, nxt), flow_warp(prev, nxt),
                                                                        pred, mid, nxt)]
        viz.save_grid(torch.stack(cells), args.figures / "interpolate.png", nrow=6)
    speed = {}
    for side in (64, 256):
        with __import__("tempfile").TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", SPEED, str(side), str(runs["pans"].dir), tmp],
                                 capture_output=True, text=True, check=True).stdout.split()
        speed[f"{side}x{side}"] = {"new_frames_per_s": round(float(out[0]), 2), "peak_rss_mib": round(float(out[1]), 1)}
        print(f"speed {side}: {speed[f'{side}x{side}']}", file=sys.stderr)
    res["speed"] = speed
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
