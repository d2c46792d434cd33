"""GANs from little data: no augmentation, DiffAugment and ADA at the same budget.

    .venv/bin/python benchmarks/ada.py --out runs/bench-ada --json BENCH.json

What is measured (CPU, seed 0): the `dcgan` preset trained on `mnist@N` (N of MNIST's training
digits, N/10 per class, the fixed low-data split) for `--steps` steps at batch 64, for N in `--n` and three
arms: no augmentation; DiffAugment (reg.diffaug=color,translation,cutout, Zhao et al. 2020); ADA
(reg.ada=true, target 0.6, Karras et al. 2020). Then FID of 10,000 samples against the 10,000
MNIST test digits with the bundled feature network (`gankit eval`), ADA's final p, and the
training time of each run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gankit
from _machine import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit.api import evaluate
from gankit.config import load_config

ARMS = {"none": [], "DiffAugment": ["reg.diffaug=color,translation,cutout"], "ADA": ["reg.ada=true"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-ada"))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--n", default="100,1000")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
           "steps": args.steps, "runs": {}}
    for n in [int(v) for v in args.n.split(",")]:
        for arm, extra in ARMS.items():
            sets = [f"data.source=mnist@{n}", f"train.steps={args.steps}", "train.batch=64", "log.progress=false",
                    "device=cpu", *extra]
            cfg = load_config("dcgan", overrides=sets)
            t0 = time.perf_counter()
            run = gankit.train(cfg, str(args.out / f"n{n}-{arm}"))
            secs = round(time.perf_counter() - t0, 1)
            fid = evaluate(str(run.dir), ["fid"], n=10_000)["fid"]
            rows = [json.loads(ln) for ln in (run.dir / "metrics.jsonl").read_text().splitlines()]
            last = [r for r in rows if "ada_p" in r]
            r = {"n": n, "arm": arm, "fid": round(fid, 2), "train_seconds": secs,
                 "ada_p": last[-1]["ada_p"] if last else None, "ada_rt": last[-1]["ada_rt"] if last else None}
            res["runs"][f"n={n} {arm}"] = r
            print(r, file=sys.stderr)
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
