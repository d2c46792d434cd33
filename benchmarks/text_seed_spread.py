"""How much the text table's BLEU-5 / self-BLEU-5 move with the sampling seed alone: two trained
runs rescored at T = 0.8 and 1 with 1,000 samples from seeds 1 and 2 (the table used seed 0).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/text_seed_spread.py runs/bench-text-mle \\
        runs/bench-seqgan-strongd --json benchmarks/results/text-seed-spread-2026-12-06.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gankit
from gankit.tasks.text.evaluation import evaluate_text
from gankit.tasks.text.task import vocab_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--json")
    args = ap.parse_args()
    out = {}
    for d in args.runs:
        run = gankit.load(d)
        for seed in (int(s) for s in args.seeds.split(",")):
            r = evaluate_text(run.config, run.G, vocab_of(run.data_meta), run.data_meta.get("classes") or [], "cpu",
                              1000, [0.8, 1.0], seed=seed, baselines=False)
            for t in ("0.8", "1"):
                s = r[f"temperature {t}"]
                out[f"{d} seed {seed} T {t}"] = {k: round(s[k], 4) for k in ("bleu2", "bleu5", "self_bleu5")}
                print(f"{d} seed {seed} T {t}: {out[f'{d} seed {seed} T {t}']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
