"""Time to quality: seconds of training until a preset's MNIST FID first falls below a target.

    .venv/bin/python benchmarks/time_to_quality.py --preset seed-mlp --target 60 --device cpu
    .venv/bin/python benchmarks/time_to_quality.py --preset dcgan --target 20 --device cuda \\
        --max-steps 20000 --eval-every 500 --json /tmp/ttq_dcgan.json
    .venv/bin/python benchmarks/time_to_quality.py --preset r3gan --budget-s 300 --eval-n 10000 \\
        --eval-every 1000 --device cpu     # FID after 300 s of training (and every 1000 steps on the way)

What is measured: the real trainer (`gankit.train`, MNIST unless --set data.source=...) with
in-training evaluation every --eval-every steps (`eval.every`; FID of --eval-n generated samples
against the 10,000 MNIST test images, with the bundled feature network, `eval.metrics=fid`).
The result is the first evaluation whose FID is below --target: its step, the training seconds up
to that step, and the wall seconds up to the end of the training call that reached it.

Training seconds exclude evaluation, sample grids and checkpoints: the trainer logs, every
`log.every` steps, "steps_per_s" measured on training time only (maintenance subtracted), so the
training time of a log window is (steps in the window) / steps_per_s and the cumulative sum at an
evaluation row is the training time to that step. `log.every` is chosen to divide --eval-every,
so every evaluation falls on a log-window boundary. Each window's time includes whatever the
step itself costs, so the first window of a training call includes the engine's warm-up (first
steps, CUDA-graph capture). Wall seconds include everything: process-side setup per call, data
loading, evaluation, checkpoints.

With --budget-s the run is one training call with `train.max_seconds` set to the budget: the
trainer stops when its training time (as above) reaches it and evaluates there, so the answer is
the FID at the budget, not at the last evaluation before it; --eval-every adds evaluations on the
way (0: only at the end). --max-steps caps the steps (default: no cap in this mode).

Stopping early: gankit.train has no early-stop hook, so training runs in chunks of
--chunk-evals x --eval-every steps; after the first chunk each call resumes the same run directory
(`resume=True`, which continues bit-for-bit, only train.steps changing), and the benchmark stops
after the chunk in which FID went below the target. Resolution is still one evaluation: the
answer is read from the evaluation rows, not from the chunk boundary. Each resumed chunk pays the
warm-up again inside its first log window; `resume_overhead_s` in the output estimates that extra
training time (first-window time minus the same steps at the median rate of the other windows),
already included in train_seconds. Raise --chunk-evals to resume less often. With an
lr schedule (train.lr_schedule != constant) train.steps may not change on resume, so the whole
--max-steps budget runs in one call.

FID depends on the number of samples (it is biased upwards at small n): compare results only at
the same --eval-n. eval.n may be as low as 2, which is only good for smoke tests.

`--table FILE.json ...` prints the results of earlier runs as one Markdown table (one row per
run: preset, overrides, batch, steps and FID at the budget or target, the curve) and trains nothing:
run every image preset with --budget-s 300 --json, then --table over the files.

Prints one result line, then the FID curve (step, training seconds, FID); --json FILE writes
{preset, device, target, steps, train_seconds, wall_seconds, fid_curve, ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import gankit
from gankit.data import load_data
from gankit.errors import GankitError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402  (CPU model, torch's CPU capability, threads)

_ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "GANKIT_CACHE")
_OWN_KEYS = ("train.steps", "train.max_seconds", "eval.every", "eval.n", "device")  # set through this script's own options


def log_every_for(eval_every: int, preferred: int = 50) -> int:
    """The largest divisor of eval_every not above `preferred` (the trainer's default log.every)."""
    return max(d for d in range(1, min(preferred, eval_every) + 1) if eval_every % d == 0)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def training_time_curve(rows: list[dict[str, Any]]) -> tuple[list[tuple[int, float, float]], list[tuple[int, float]]]:
    """From metrics.jsonl rows in file order: ([(step, cumulative training s, fid)] at each
    evaluation, [(window steps, window s)] for each log row).

    A log row at step s closes the window that began at the previous log row; its training time is
    window / steps_per_s. After a rollback (the trainer went back to a checkpoint) steps go
    backwards; the window then starts at the latest logged step below s. Training time is summed in
    file order, i.e. in the order it was spent, so time spent on rolled-back steps counts too.
    """
    curve: list[tuple[int, float, float]] = []
    windows: list[tuple[int, float]] = []
    logged: list[int] = [0]
    total = 0.0
    for r in rows:
        if r.get("eval"):
            if "fid" in r:
                curve.append((int(r["step"]), total, float(r["fid"])))
            continue
        if "steps_per_s" not in r:
            continue
        s = int(r["step"])
        start = logged[-1] if s > logged[-1] else max((x for x in logged if x < s), default=0)
        n = s - start
        secs = n / r["steps_per_s"] if r["steps_per_s"] > 0 else math.inf
        windows.append((n, secs))
        total += secs
        logged.append(s)
    return curve, windows


def table(paths: list[str]) -> str:
    """One Markdown table of earlier results (their --json files), best FID at the budget first."""
    rows = [json.loads(Path(f).read_text()) for f in paths]
    rows.sort(key=lambda r: (r["fid"] is None, r["fid"] if r["fid"] is not None else math.inf))
    out = ["| preset | overrides | batch | steps/s | steps | training s | FID | FID curve (step: FID) |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sets = ", ".join(f"`{s}`" for s in r["sets"]) or "-"
        curve = ", ".join(f"{s}: {f:.1f}" for s, _, f in r["fid_curve"])
        fid = f"**{r['fid']:.2f}**" if r["fid"] is not None else "-"
        secs = f"{r['train_seconds']:.0f}" if r["train_seconds"] is not None else "-"
        rate = f"{r['median_steps_per_s']:.1f}" if r.get("median_steps_per_s") else "-"
        out.append(f"| {r['preset']} | {sets} | {r['batch']} | {rate} | {r['steps'] or '-'} | {secs} | {fid} | {curve} |")
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--table":
        if len(sys.argv) < 3:
            sys.exit("time_to_quality: --table needs result files (written by --json)")
        print(table(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", metavar="FILE.json", help="print earlier results as one table (first option)")
    p.add_argument("--preset", default="seed-mlp")
    p.add_argument("--target", type=float, help="stop at the first FID below this")
    p.add_argument("--budget-s", type=float, help="instead: train until this many training seconds have passed and "
                   "report the FID of the last evaluation within them (the issue's 'FID after 300 s')")
    p.add_argument("--max-steps", type=int, help="training budget in steps (default 5000; with --budget-s: no cap)")
    p.add_argument("--eval-every", type=int, default=250,
                   help="evaluate FID every this many steps (with --budget-s, 0: only at the budget)")
    p.add_argument("--eval-n", type=int, default=2000, help="generated samples per FID (config minimum: 2)")
    p.add_argument("--chunk-evals", type=int, default=1,
                   help="evaluations per training call: resume (and pay the warm-up again) this rarely")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override, repeatable (e.g. train.batch=256)")
    p.add_argument("--out", help="run directory (must not hold a run); default: a temporary one, deleted after")
    p.add_argument("--json", metavar="FILE", help="write the result here")
    args = p.parse_args()
    for s in args.sets:
        key = s.partition("=")[0].strip()
        if key in _OWN_KEYS:
            p.error(f"--set {key}: use this script's own option (--max-steps, --eval-every, --eval-n, --device)")
    if (args.target is None) == (args.budget_s is None):
        p.error("give --target FID (time until FID < target) or --budget-s SECONDS (FID after that much training)")
    if args.max_steps is None:
        args.max_steps = 10**8 if args.budget_s is not None else 5000
    if args.budget_s is not None and args.eval_every == 0:
        args.eval_every = args.max_steps  # evaluated at the budget only (the trainer's last step)
    if min(args.max_steps, args.eval_every, args.chunk_evals) < 1 or (args.budget_s is not None and args.budget_s <= 0):
        p.error("--max-steps, --eval-every and --chunk-evals must be >= 1, --budget-s > 0")

    # Base config. Grids and periodic checkpoints only at the end (every training call still writes a
    # checkpoint and a grid at its last step, which resuming needs); --set comes last and wins.
    sets = [f"eval.every={args.eval_every}", f"eval.n={args.eval_n}", "eval.metrics=fid",
            f"log.every={log_every_for(args.eval_every)}", "log.progress=false",
            f"log.grid_every={args.max_steps}", f"log.ckpt_every={args.max_steps}", f"device={args.device}",
            *([f"train.max_seconds={args.budget_s}"] if args.budget_s is not None else []), *args.sets]
    cfg = gankit.load_config(args.preset, overrides=[*sets, f"train.steps={args.max_steps}"])
    if "fid" not in cfg.eval.metrics.replace(" ", "").split(","):
        p.error(f"eval.metrics={cfg.eval.metrics!r} must include fid")
    if args.eval_every % cfg.log.every:
        p.error(f"log.every={cfg.log.every} must divide --eval-every {args.eval_every}, so that every "
                "evaluation falls on a log-window boundary")
    chunked = cfg.train.lr_schedule == "constant" and args.budget_s is None
    chunk = args.eval_every * args.chunk_evals if chunked else args.max_steps

    tmp = None if args.out else tempfile.mkdtemp(prefix="gankit-ttq-")
    out = Path(args.out) if args.out else Path(tmp) / "run"
    env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join([sys.executable, *sys.argv])])
    try:
        load_data(cfg.data.source)  # convert and cache the data once, outside the timing
        wall0 = time.perf_counter()
        hit: tuple[int, float, float] | None = None
        curve: list[tuple[int, float, float]] = []
        windows: list[tuple[int, float]] = []
        first_windows: list[int] = []  # index in `windows` of each training call's first log window
        done, calls, wall, interrupted, device = 0, 0, 0.0, None, args.device
        while done < args.max_steps and hit is None:
            steps = min(done + chunk, args.max_steps)
            n_before = len(windows)
            run = gankit.train(cfg.replace(**{"train.steps": steps}), out, resume=calls > 0)
            calls += 1
            wall = time.perf_counter() - wall0
            device, done, interrupted = str(run.device), run.step, run.interrupted
            curve, windows = training_time_curve(read_metrics(out / "metrics.jsonl"))
            if len(windows) > n_before:
                first_windows.append(n_before)
            if args.target is not None:
                hit = next((c for c in curve if c[2] < args.target), None)
            elif curve:  # the trainer stopped at the budget (or at --max-steps) and evaluated there
                hit = curve[-1]
            last_fid = curve[-1][2] if curve else math.nan
            print(f"[call {calls}] step {done}: train {sum(w[1] for w in windows):.1f} s, wall {wall:.1f} s, "
                  f"FID {last_fid:.2f}", file=sys.stderr, flush=True)
            if interrupted:
                break
        # what the forwards trained in, and why (train.precision auto measures it on a CPU)
        precision = [ln.split(" precision: ", 1)[1] for ln in (out / "train.log").read_text().splitlines()
                     if " precision: " in ln]
    except GankitError as e:
        sys.exit(f"time_to_quality: {e}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    # Extra training time of resumed calls: each one's first window against the others' median rate.
    steady = [n / s for i, (n, s) in enumerate(windows) if i not in first_windows and s > 0]
    rate = statistics.median(steady) if steady else None
    overhead = sum(max(0.0, windows[i][1] - windows[i][0] / rate) for i in first_windows[1:]) if rate else None
    best = min(curve, key=lambda c: c[2]) if curve else None
    result: dict[str, Any] = {
        "preset": args.preset, "device": device, "target": args.target, "reached": hit is not None,
        "steps": hit[0] if hit else None, "train_seconds": round(hit[1], 3) if hit else None,
        "fid": round(hit[2], 3) if hit else None, "wall_seconds": round(wall, 3),
        "steps_trained": done, "train_calls": calls, "chunked": chunked,
        "resume_overhead_s": None if overhead is None else round(overhead, 3),
        "median_steps_per_s": None if rate is None else round(rate, 3),
        "best_fid": round(best[2], 3) if best else None, "best_step": best[0] if best else None,
        "fid_curve": [(s, round(t, 3), round(f, 3)) for s, t, f in curve],
        "eval_every": args.eval_every, "eval_n": args.eval_n, "max_steps": args.max_steps,
        "batch": cfg.train.batch, "sets": args.sets, "interrupted": interrupted,
        "torch": str(torch.__version__), "threads": torch.get_num_threads(), "command": command,
        "machine": machine(), "precision": precision[0] if precision else None,
    }
    result["budget_s"] = args.budget_s
    if hit and args.budget_s is not None:
        print(f"{args.preset} on {device}: FID {hit[2]:.2f} after {hit[1]:.1f} s of training (budget "
              f"{args.budget_s:g} s), step {hit[0]} (eval n={args.eval_n}, every {args.eval_every} steps and at the end)")
    elif hit:
        print(f"{args.preset} on {device}: FID {hit[2]:.2f} < {args.target:g} at step {hit[0]} after "
              f"{hit[1]:.1f} s of training ({wall:.1f} s wall, {calls} training call(s), "
              f"eval n={args.eval_n} every {args.eval_every})")
    else:
        why = f"interrupted ({interrupted})" if interrupted else f"within {done} steps"
        print(f"{args.preset} on {device}: FID never below {args.target:g} {why}; best "
              f"{result['best_fid']} at step {result['best_step']} ({wall:.1f} s wall)")
    if precision:
        print(f"precision: {precision[0]}")
    m = machine()
    print(f"{m['cpu']}, torch {torch.__version__} (CPU capability {m['cpu_capability']}), "
          f"{torch.get_num_threads()} threads; command: {command}")
    if overhead is not None:
        print(f"estimated warm-up repeated by resuming, included in training time: {overhead:.2f} s "
              f"(median {rate:.2f} steps/s)")
    print(f"{'step':>8} {'train_s':>10} {'fid':>10}")
    for s, t, f in curve:
        print(f"{s:>8} {t:>10.2f} {f:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
