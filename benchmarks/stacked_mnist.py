"""Stacked MNIST mode coverage: modes covered (of 1,000) and KL to uniform after a training budget.

    .venv/bin/python benchmarks/stacked_mnist.py --preset r3gan --budget-s 900 --eval-every 2000 \\
        --json benchmarks/results/stacked-r3gan.json
    .venv/bin/python benchmarks/stacked_mnist.py --preset r3gan --budget-s 3600 --device cuda   # a GPU

The protocol is PacGAN's (Lin et al. 2018), as R3GAN's Table 3 reports it: each of 26,000 samples
(--n) has its three channels classified as digits by the bundled MNIST network, the triple is one
of 1,000 modes; "modes" counts the modes with at least one sample, "kl" is KL(sample histogram ||
uniform over 1,000). The data is `stacked-mnist` (gankit.data.mnist.stacked_mnist: 60,000
images, three random training digits each, a fixed seed), at 28 px with 3 channels.

What is measured: the real trainer (`gankit.train`, the preset with data.source=stacked-mnist and
data.channels=3) for --budget-s seconds of training (`train.max_seconds`: evaluation, grids and
checkpoints excluded), scored in training (`eval.metrics=stacked`, the EMA generator where the
preset keeps one, fixed sampling seeds) every --eval-every steps and at the budget. Prints the
final modes / KL, then the curve (step, training seconds, modes, KL); --json writes all of it with
the CPU's model and torch's CPU capability.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import gankit
from gankit.errors import GankitError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402  (benchmarks/_machine.py: CPU model, capability, threads)
from time_to_quality import log_every_for, read_metrics, training_time_curve  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--budget-s", type=float, default=600.0, help="seconds of training (default 600)")
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: only at the budget)")
    p.add_argument("--n", type=int, default=26_000, help="samples per evaluation (PacGAN's 26,000)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override, repeatable")
    p.add_argument("--out", help="run directory (kept; default: a temporary one)")
    p.add_argument("--json", metavar="FILE", help="write the result here")
    args = p.parse_args()
    if args.budget_s <= 0 or args.n < 1000 or args.eval_every < 0:
        p.error("--budget-s must be > 0, --n >= 1000, --eval-every >= 0")

    steps = 10**8  # the time budget ends the run
    every = args.eval_every or steps
    sets = ["data.source=stacked-mnist", "data.channels=3", f"train.steps={steps}",
            f"train.max_seconds={args.budget_s}", f"eval.every={every}", f"eval.n={args.n}",
            "eval.metrics=stacked", "eval.ref=stacked-mnist:test", "log.progress=false",
            f"log.every={log_every_for(every)}",
            f"log.grid_every={every}", f"log.ckpt_every={steps}", f"device={args.device}", *args.sets]
    try:
        cfg = gankit.load_config(args.preset, overrides=sets)
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gankit-stacked-")) / "run"
        gankit.train(cfg, out)
    except GankitError as e:
        sys.exit(f"stacked_mnist: {e}")
    rows = read_metrics(out / "metrics.jsonl")
    # training seconds at each evaluation: the same windows as time_to_quality's, read from the log rows
    _, windows = training_time_curve(rows)
    logged = [r for r in rows if not r.get("eval") and "steps_per_s" in r]
    t_at, total = {}, 0.0
    for r, (_, secs) in zip(logged, windows):
        total += secs
        t_at[int(r["step"])] = total
    curve = [(int(r["step"]), round(t_at.get(int(r["step"]), float("nan")), 1), int(r["stacked_modes"]),
              round(float(r["stacked_kl"]), 4)) for r in rows if r.get("eval") and "stacked_modes" in r]
    step, secs, modes, kl = curve[-1]
    from gankit.util import resolve_device

    result = {"preset": args.preset, "device": str(resolve_device(cfg.device)),
              "budget_s": args.budget_s, "steps": step, "train_seconds": secs, "modes": modes, "kl": kl,
              "n": args.n, "batch": cfg.train.batch, "sets": args.sets, "curve": curve,
              "machine": machine(), "command": " ".join([sys.executable, *sys.argv]), "run": str(out)}
    print(f"{args.preset}: {modes} modes of 1000, KL {kl:.4f} after {secs:.0f} s of training "
          f"({step} steps at batch {cfg.train.batch}; n={args.n})")
    print(f"{'step':>8} {'train_s':>9} {'modes':>6} {'kl':>8}")
    for s, t, m, k in curve:
        print(f"{s:>8} {t:>9} {m:>6} {k:>8.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
