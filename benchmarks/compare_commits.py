"""`gankit bench` at two commits, alternated in one sitting: did a change cost speed?

    .venv/bin/python benchmarks/compare_commits.py --old 6a70588 --presets seed-mlp dcgan --repeats 3

Each commit is checked out (git worktree) into a temporary folder and run with this venv's
python and PYTHONPATH pointing at its src/; the runs alternate old, new, old, new, ... per preset
so that the machine's drift falls on both alike. Each `gankit bench` also times the tutorial's
loop in the same process, so the figure compared is gankit's steps/s and its ratio to that
reference loop (robust to the machine's speed changing between runs). Prints a table and the
machine; --json writes every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(src: Path, preset: str, seconds: float, device: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-m", "gankit", "bench", "--preset", preset, "--seconds", str(seconds),
                          "--device", device, "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", required=True, help="the commit before the change")
    p.add_argument("--new", default="HEAD")
    p.add_argument("--presets", nargs="+", default=["seed-mlp", "dcgan"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for tag, rev in (("old", args.old), ("new", args.new)):
            d = Path(tmp) / tag
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(d), rev], check=True,
                           capture_output=True)
            trees[tag] = d / "src"
        runs = []
        try:
            for preset in args.presets:
                for i in range(args.repeats):
                    for tag in ("old", "new"):
                        r = bench(trees[tag], preset, args.seconds, args.device)
                        runs.append({"preset": preset, "commit": tag, "repeat": i, "steps_per_s": r["gankit"]["steps_per_s"],
                                     "ratio": r["ratio"], "step_mode": r["step_mode"]})
                        print(f"{preset} {tag} #{i}: {r['gankit']['steps_per_s']} steps/s, {r['ratio']}x the reference",
                              file=sys.stderr)
        finally:
            for tag in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / tag)],
                               capture_output=True)
    print(f"# {cpu}; torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          f"old {args.old}, new {args.new}; {args.repeats} alternated runs of {args.seconds:g} s each")
    print(f"{'preset':<10} {'old steps/s':>12} {'new steps/s':>12} {'new/old':>8} {'old ratio':>10} {'new ratio':>10}")
    for preset in args.presets:
        med = {t: statistics.median(r["steps_per_s"] for r in runs if r["preset"] == preset and r["commit"] == t)
               for t in ("old", "new")}
        rat = {t: statistics.median(r["ratio"] for r in runs if r["preset"] == preset and r["commit"] == t)
               for t in ("old", "new")}
        print(f"{preset:<10} {med['old']:>12.1f} {med['new']:>12.1f} {med['new'] / med['old']:>8.3f} "
              f"{rat['old']:>9.2f}x {rat['new']:>9.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "torch": torch.__version__, "runs": runs,
                                         "command": " ".join(sys.argv)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
