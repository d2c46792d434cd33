"""Data-parallel scaling: training throughput of `gankit train --nproc N` against one process.

    .venv/bin/python benchmarks/ddp_scaling.py --device cuda --nproc 1,2,4,8 --preset dcgan --batch 256
    .venv/bin/python benchmarks/ddp_scaling.py --device cpu --nproc 1,2 --preset dcgan --batch 32 \\
        --data fake:1x28x28:4096 --steps 120

Weak scaling, the way data-parallel training is used: every process keeps --batch examples per
step, so the global batch (train.batch) is --batch x N. For each N the real trainer runs
(`gankit train --nproc N`: torchrun, DistributedDataParallel, rank 0 logging; on CPU each process
gets CPUs / N threads, so N processes share the same cores one process had). Throughput is read
from the run's metrics.jsonl, whose log rows carry `steps_per_s` over training time only
(checkpoints, grids and evaluation excluded): the median over the log windows after the first
(the first holds the warm-up). images/s = steps/s x global batch; speed-up = images/s at N /
images/s at 1; efficiency = speed-up / N, the figure for N devices (N GPUs). On CPU the N
processes share the cores one process had, so there the speed-up is the figure: 1.0 means the
gradient all-reduces cost nothing. Prints a markdown table and the command; --json FILE writes
the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(n: int, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "gankit", "train", "--nproc", str(n), "--preset", args.preset,
           "--data", args.data, "--device", args.device, "--steps", str(args.steps), "--out", str(out),
           "--set", f"train.batch={args.batch * n}", "--set", f"log.every={args.log_every}",
           "--set", "log.progress=false", "--set", f"log.ckpt_every={args.steps}",
           "--set", f"log.grid_every={args.steps}", *[a for s in args.set for a in ("--set", s)]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        return {"nproc": n, "error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"}
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r][1:]
    sps = statistics.median(rates)
    return {"nproc": n, "global_batch": args.batch * n, "steps_per_s": round(sps, 2),
            "images_per_s": round(sps * args.batch * n, 1), "windows": len(rates)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", default="1,2", help="comma-separated process counts (default 1,2)")
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--data", default="mnist")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch", type=int, default=64, help="examples per process per step (default 64)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    counts = [int(x) for x in args.nproc.split(",")]
    if args.steps < 3 * args.log_every:
        p.error("--steps must cover at least 3 log windows (--log-every)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            print(f"nproc {n} ...", file=sys.stderr, flush=True)
            rows.append(run(n, args, Path(tmp) / f"n{n}"))
    base = next((r for r in rows if r["nproc"] == 1 and "error" not in r), None)
    print(f"{args.preset} on {args.device}, {args.batch} examples per process per step, data {args.data}")
    print("| processes | global batch | steps/s | images/s | speed-up | efficiency |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['nproc']} | | failed: {r['error']} | | | |")
            continue
        if base:
            r["speedup"] = round(r["images_per_s"] / base["images_per_s"], 3)
            r["efficiency"] = round(r["speedup"] / r["nproc"], 3)
        sp = f"{r['speedup']:.2f}x" if base else "n/a"
        eff = f"{r['efficiency']:.0%}" if base else "n/a"
        print(f"| {r['nproc']} | {r['global_batch']} | {r['steps_per_s']:.2f} | {r['images_per_s']:.0f} | {sp} | {eff} |")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
