"""fp32 against bf16 for the generation task's training step on this machine, and what
`train.precision: auto` picks here (its probe, `gankit.training.precision.choose`, run afresh
in an empty cache, as a run of the preset would run it the first time on this machine).

    .venv/bin/python benchmarks/precision.py --presets seed-mlp,dcgan,r3gan,stylegan2 --rounds 5

Both engines of a preset are built once (MNIST, the preset's batch), warmed up for 5 steps, then
timed in alternating rounds of 10 steps each, so that noise from the machine falls on both alike;
the figure is the median seconds per step over the rounds, and the speed-up fp32 / bf16. Then the
probe decides, and the row says whether it picked the precision the rounds found faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

from gankit.config import load_config  # noqa: E402
from gankit.tasks import get_task  # noqa: E402
from gankit.training.engine import Engine  # noqa: E402
from gankit.training.precision import MARGIN, choose  # noqa: E402
from gankit.util import native_bf16_cpu  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="seed-mlp,dcgan")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    cpu = torch.device("cpu")
    out = {"machine": machine(), "native_bf16_flag": native_bf16_cpu(), "margin": MARGIN, "results": {}}
    for preset in args.presets.split(","):
        engines = {}
        for prec in ("fp32", "bf16"):
            cfg = load_config(preset, overrides=["log.progress=false", f"train.precision={prec}", "device=cpu"])
            data = get_task(cfg.task).load_data(cfg, cpu)
            e = Engine.build(cfg, data, cpu, precision=prec)
            for t in range(5):
                e.step(t)
            engines[prec] = e
        times: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(args.rounds):
            for k, e in engines.items():
                t0 = time.perf_counter()
                for t in range(args.steps):
                    e.step(t)
                times[k].append((time.perf_counter() - t0) / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        del engines
        auto_cfg = load_config(preset, overrides=["log.progress=false", "device=cpu"])
        before = os.environ.get("GANKIT_CACHE")
        with tempfile.TemporaryDirectory() as cache:  # an empty cache: the probe runs now
            os.environ["GANKIT_CACHE"] = cache
            t0 = time.perf_counter()
            c = choose(auto_cfg, data, cpu, get_task(auto_cfg.task), steps_left=10**9)
            spent = time.perf_counter() - t0
        if before is None:
            os.environ.pop("GANKIT_CACHE")
        else:
            os.environ["GANKIT_CACHE"] = before
        faster = "bf16" if med["bf16"] < med["fp32"] else "fp32"
        out["results"][preset] = {"batch": cfg.train.batch, "fp32_s_per_step": round(med["fp32"], 4),
                                  "bf16_s_per_step": round(med["bf16"], 4),
                                  "bf16_speedup": round(med["fp32"] / med["bf16"], 2),
                                  "auto": c.name, "auto_why": c.why, "probe_s": round(spent, 1),
                                  "probe_ms": {"fp32": c.fp32_ms, "bf16": c.bf16_ms},
                                  "auto_is_faster": c.name == faster,
                                  "within_margin": max(med.values()) < MARGIN * min(med.values())}
        print(preset, out["results"][preset], flush=True)
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
