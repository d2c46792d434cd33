"""Fine-tuning with frozen layers: an MNIST generator fine-tuned to 100 Fashion-MNIST images,
against training from scratch on the same 100 images with the same step budget.

    PYTHONPATH=src .venv/bin/python benchmarks/finetune_example.py --out runs/bench-finetune \\
        --json benchmarks/results/finetune-2026-12-07.json

What is measured (CPU, seed 0, fp32, every run the `--preset` as it is: by default
`seed-mlp-fast`, the preset that learns MNIST fastest on a CPU; its D has 3 blocks, one per
Linear layer):
1. pretrain: `--pretrain-steps` steps on MNIST (60,000 digits);
2. on `fashion-mnist@100` (10 training images per class, Debian's dataset-fashion-mnist), at
   batch 64 with DiffAugment (translation, cutout), each for `--steps` steps: from scratch; from
   the MNIST run (train.init) with nothing frozen; and from it with D's first K blocks frozen
   for each K in `--freeze-d` (train.freeze_d, Mo et al. 2020);
then each run's EMA generator (and the MNIST generator as it is) scored by `gankit eval`: FID of
`--n` samples against the 10,000 Fashion-MNIST test images with the bundled feature network, and
the memorisation check (samples' nearest training image against held-out test images).
The question is quality at a fixed budget, not speed: the training seconds are recorded only
to size the budget on a shared CPU.
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

# fp32 named: train.precision auto would time bf16 on runs over 500 steps and might pick either
COMMON = ["log.progress=false", "log.grid_every=100000", "device=cpu", "seed=0", "train.precision=fp32"]
FEW = ["data.source=fashion-mnist@100", "train.batch=64", "reg.diffaug=translation,cutout"]  # the 100-image runs
REF = "fashion-mnist:test"


def _train(preset: str, name: str, out: Path, sets: list[str]) -> tuple[Path, float]:
    t0 = time.perf_counter()
    run = gankit.train(load_config(preset, overrides=COMMON + sets), str(out / name))
    secs = round(time.perf_counter() - t0, 1)
    print(f"{name}: trained in {secs} s", file=sys.stderr)
    return run.dir, secs


def _score(run_dir: Path, n: int) -> dict:
    r = evaluate(str(run_dir), ["fid", "memorization"], n=n, ref=REF, train="fashion-mnist@100",
                 out=str(run_dir / "memorization"))
    m = r["memorization"]
    px = m["pixel"]  # share of samples nearer a training image than the nearest 5% of held-out images are
    keep = {"share_below": round(px["share_below"], 4), "chance_limit": round(px["chance_limit"], 4),
            "median_ratio": round(px["median_ratio"], 3), "copying": m["copying"], "verdict": m["verdict"]}
    return {"fid": round(r["fid"], 2), "memorization": keep, "protocol": r["protocol"],
            "memorization_protocol": m.get("protocol")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-finetune"))
    p.add_argument("--preset", default="seed-mlp-fast")
    p.add_argument("--pretrain-steps", type=int, default=2500)
    p.add_argument("--steps", type=int, default=600, help="fine-tuning / from-scratch steps on the 100 images")
    p.add_argument("--freeze-d", default="1,2", help="K of each frozen-D arm, comma-separated")
    p.add_argument("--pretrained", type=Path, help="reuse this MNIST run (made by an earlier call) instead of pretraining")
    p.add_argument("--n", type=int, default=2000, help="samples per evaluation")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
           "preset": args.preset, "overrides": COMMON, "few_shot_overrides": FEW, "pretrain_steps": args.pretrain_steps, "steps": args.steps,
           "data": "fashion-mnist@100", "ref": REF, "n": args.n, "runs": {}}
    if args.pretrained:
        pre, secs = args.pretrained, None
        res["pretrain_steps"] = gankit.load(pre).step
    else:
        pre, secs = _train(args.preset, "pretrain-mnist", args.out,
                           ["data.source=mnist", f"train.steps={args.pretrain_steps}"])
    res["runs"]["MNIST generator, not fine-tuned"] = {"train_seconds": secs, **_score(pre, args.n)}
    arms = {"from scratch": [], "fine-tune, freeze_d=0": [f"train.init={pre}"]}
    for k in [int(v) for v in args.freeze_d.split(",")]:
        arms[f"fine-tune, freeze_d={k}"] = [f"train.init={pre}", f"train.freeze_d={k}"]
    for i, (arm, extra) in enumerate(arms.items()):
        run, secs = _train(args.preset, f"arm{i}", args.out, [*FEW, f"train.steps={args.steps}", *extra])
        res["runs"][arm] = {"train_seconds": secs, "overrides": extra, **_score(run, args.n)}
        print(arm, json.dumps({k: v for k, v in res["runs"][arm].items() if k != "protocol"}), file=sys.stderr)
    text = json.dumps(res, indent=1, default=str)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
