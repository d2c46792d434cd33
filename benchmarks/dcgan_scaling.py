"""Training-step throughput and peak memory of the dcgan preset against batch size and resolution.

    .venv/bin/python benchmarks/dcgan_scaling.py --device cuda
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/dcgan_scaling.py --device cpu --res 28,32 \\
        --batch 64,128,256 --data fake --json /tmp/dcgan_cpu.json

What is measured: gankit's own training step (`gankit.training.engine.Engine.step`, exactly what
the trainer runs, CUDA graph included) for every (resolution, batch) cell of the grid; no
logging, grids, checkpoints or evaluation. Each cell runs in a fresh Python process (this script
calling itself with `--cell RES BATCH`, which prints one JSON line), so no cell inherits another's
allocator state, CUDA graphs, memory high-water mark or a poisoned state after running out of memory.

In each cell process:
1. the config is the preset (default dcgan) with data.resolution=RES, train.batch=BATCH and any
   --set overrides; the data is MNIST (60,000 images, resized once at load by the data layer) or,
   with --data fake, random uint8 images of the same shape (fake:1xRESxRES:N, N = max(4096,
   BATCH)), which skips data preparation;
2. the engine is built, then --warmup steps run untimed (on CUDA at least 10, and enough for every
   variant of the step to be warmed up and captured as a CUDA graph before timing: with lazy R1,
   reg.r1 > 0 in other presets, the step with the penalty is a variant that comes round only
   every reg.r1_every D updates);
3. steps are timed until --seconds have passed and at least --min-steps steps ran. On CUDA the
   clock is read only after `torch.cuda.synchronize()` (at timed steps 1, 2, 4, ..., 64, then every
   50 steps), so queued but unfinished work is never counted as done.

Peak memory:
- CUDA: `torch.cuda.max_memory_allocated()`, with the peak statistics reset before the engine is
  built; it covers the device-resident data, the networks, optimiser state, the captured graph's
  pool and the step's temporaries. `max_memory_reserved()` is in the JSON too.
- CPU: the resident-set high-water mark of the cell process (VmHWM from /proc/self/status). It is
  reset (/proc/self/clear_refs) after the data are loaded, so the table's figure covers engine
  build, warm-up and timed steps: the interpreter and torch's libraries, the resident data, the
  networks and the step's temporaries, but not the one-off resize of MNIST at load. The whole
  process's high-water mark (data preparation included) is `process_peak_bytes` in the JSON.
  VmHWM is used rather than getrusage's ru_maxrss because on Linux a child started by
  subprocess inherits its parent's ru_maxrss through exec (the child reports at least the parent's
  peak); where /proc is missing, ru_maxrss is the fallback and `peak_source` says so.

A cell that runs out of memory is recorded as "oom" (a CUDA or CPU allocator error, or the cell
process killed by SIGKILL, which on Linux is usually the kernel's OOM killer); larger batches at
that resolution are then skipped and shown as "oom*". Output: a markdown table on stdout (rows:
batch; per resolution: steps/s, images/s, peak MiB) with the device, torch version, thread count,
the step mode (`Engine.describe()`) and the exact command line; progress on stderr; every row,
with more detail, in --json FILE.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gankit.config import RunConfig

FAKE_N = 4096  # images in the synthetic source (at least the batch size: the sampler needs B <= N)
CUDA_MIN_WARMUP = 10  # the engine warms up 3 times on a side stream, then captures; leave margin
_ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "GANKIT_CACHE")


# -- one cell (runs in its own process) -------------------------------------------------------

def _proc_status_kib(key: str) -> int | None:
    """A 'kB' field of /proc/self/status (VmHWM, VmRSS) in KiB, or None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_peak() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (Linux >= 4.0); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_peak_bytes() -> tuple[int, str]:
    """(peak resident set in bytes, where it was read)."""
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024, "VmHWM"
    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss"


def _is_oom(exc: BaseException) -> bool:
    """Allocation failures: torch's (CUDA or CPU allocator), Python's, or a library's (cuBLAS, cuDNN)."""
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        m in msg for m in ("out of memory", "not enough memory", "can't allocate memory", "alloc_failed"))


def _capture_steps(cfg: RunConfig) -> int:
    """Steps after which every variant of the step has had the engine's warm-up runs and its capture.

    The variants differ by which of the step's n_critic D updates apply lazy R1 (every r1_every-th D
    update); the pattern repeats every r1_every / gcd(r1_every, n_critic) steps, each variant once."""
    from gankit.training.capture import WARMUP

    k, every = cfg.train.n_critic, cfg.reg.r1_every
    cycle = every // math.gcd(every, k) if cfg.reg.r1 > 0 else 1
    return (WARMUP + 1) * cycle


def run_cell(res: int, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build the engine for one (resolution, batch) cell, warm up, time it; a JSON-ready row."""
    import torch

    from gankit.config import load_config
    from gankit.data import load_data
    from gankit.util import resolve_device
    from gankit.training.engine import Engine

    dev = resolve_device(args.device)
    cuda = dev.type == "cuda"
    row: dict[str, Any] = {
        "res": res, "batch": batch, "status": "ok", "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if cuda else (platform.processor() or platform.machine()),
        "torch": str(torch.__version__), "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "preset": args.preset, "data": args.data,
    }
    source = "mnist" if args.data == "mnist" else f"fake:1x{res}x{res}:{max(FAKE_N, batch)}"
    cfg = load_config(args.preset, overrides=[f"data.source={source}", f"data.resolution={res}", "data.channels=1",
                                              f"train.batch={batch}", f"device={dev.type}", *args.sets])
    t0 = time.perf_counter()
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, dev)
    row["data_load_s"] = round(time.perf_counter() - t0, 3)

    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        # The high-water mark so far covers the imports and the data preparation; keep it, then reset
        # it so that what is read at the end covers only the engine and its steps.
        process_peak, _ = _rss_peak_bytes()
        row["peak_scope"] = "train" if _reset_rss_peak() else "process"
        rss = _proc_status_kib("VmRSS")
        row["rss_before_build_bytes"] = None if rss is None else rss * 1024

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    try:
        t0 = time.perf_counter()
        e = Engine.build(cfg, data, dev)
        row["step_mode"] = e.describe()
        warmup = max(args.warmup, CUDA_MIN_WARMUP, _capture_steps(cfg)) if cuda else args.warmup
        for t in range(warmup):
            e.step(t)
        sync()
        row["build_and_warmup_s"] = round(time.perf_counter() - t0, 3)
        row["warmup_steps"] = warmup

        # Timed steps. The clock is only trusted after a sync, so the stop test runs at sync points:
        # at timed steps 1, 2, 4, ..., 64, then every 50 steps, to keep syncs out of the step's way.
        n, next_check, t = 0, 1, warmup
        t0 = time.perf_counter()
        while True:
            e.step(t)
            t += 1
            n += 1
            if not cuda or n >= next_check:
                sync()
                elapsed = time.perf_counter() - t0
                if elapsed >= args.seconds and n >= args.min_steps:
                    break
                next_check = n + min(n, 50)
        row.update(steps=n, seconds=round(elapsed, 4), steps_per_s=round(n / elapsed, 3),
                   images_per_s=round(n * batch / elapsed, 1))
        row["losses_finite"] = bool(torch.isfinite(e.st.acc).all())
    except Exception as exc:  # out of memory is a result; anything else is a bug worth seeing
        if not _is_oom(exc):
            raise
        row["status"] = "oom"
        row["error"] = str(exc).strip().splitlines()[0][:300]
    if cuda:
        row["peak_mem_bytes"] = torch.cuda.max_memory_allocated(dev)
        row["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(dev)
        row["peak_source"] = "torch.cuda.max_memory_allocated"
    else:
        row["peak_mem_bytes"], row["peak_source"] = _rss_peak_bytes()
        row["process_peak_bytes"] = max(process_peak, row["peak_mem_bytes"])  # data preparation included
    return row


# -- the grid (the parent process) ------------------------------------------------------------

def _cell_command(res: int, batch: int, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--cell", str(res), str(batch),
           "--device", args.device, "--data", args.data, "--preset", args.preset,
           "--warmup", str(args.warmup), "--seconds", str(args.seconds), "--min-steps", str(args.min_steps)]
    for s in args.sets:
        cmd += ["--set", s]
    return cmd


def measure(res: int, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one cell in a fresh process; its JSON row, or a row saying why there is none."""
    base: dict[str, Any] = {"res": res, "batch": batch}
    try:
        p = subprocess.run(_cell_command(res, batch, args), check=False, capture_output=True, text=True,
                           timeout=args.cell_timeout)
    except subprocess.TimeoutExpired:
        return {**base, "status": "timeout", "error": f"cell took longer than {args.cell_timeout} s"}
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode == 0 and lines:
        return json.loads(lines[-1])
    err = (p.stderr.strip().splitlines() or [""])[-1][:300]
    if p.returncode == -9:  # SIGKILL: on Linux, almost always the kernel's OOM killer
        return {**base, "status": "oom", "error": f"cell process killed by SIGKILL (likely out of memory) {err}"}
    return {**base, "status": "error", "error": f"exit {p.returncode}: {err}"}


def _mib(b: int | None) -> str:
    return "" if b is None else f"{b / 2**20:,.0f}"


def _table(rows: list[dict[str, Any]], resolutions: list[int], batches: list[int]) -> str:
    by = {(r["res"], r["batch"]): r for r in rows}
    head = ["batch"] + [f"{res}px {k}" for res in resolutions for k in ("steps/s", "img/s", "peak MiB")]
    out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for b in batches:
        cells = [str(b)]
        for res in resolutions:
            r = by.get((res, b))
            if r is None:
                cells += ["", "", ""]
            elif r["status"] == "ok":
                cells += [f"{r['steps_per_s']:,.2f}", f"{r['images_per_s']:,.0f}", _mib(r.get("peak_mem_bytes"))]
            else:
                tag = "oom*" if r.get("skipped") else r["status"]
                cells += [tag, tag, _mib(r.get("peak_mem_bytes")) if r["status"] == "oom" else ""]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--res", type=_ints, default=[28, 32, 64], help="resolutions, comma-separated (28, 32, 64)")
    p.add_argument("--batch", type=_ints, default=[64 * 2**i for i in range(7)],
                   help="batch sizes, comma-separated (default 64,128,...,4096)")
    p.add_argument("--data", choices=["mnist", "fake"], default="mnist",
                   help="MNIST resized by the data layer, or random images of the same shape")
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override, repeatable (e.g. train.precision=bf16)")
    p.add_argument("--warmup", type=int, default=5, help=f"untimed steps (at least {CUDA_MIN_WARMUP} on CUDA)")
    p.add_argument("--seconds", type=float, default=3.0, help="time each cell for at least this long")
    p.add_argument("--min-steps", type=int, default=3, help="and for at least this many steps")
    p.add_argument("--cell-timeout", type=float, default=900.0, help="seconds before a cell is abandoned")
    p.add_argument("--json", metavar="FILE", help="write the environment and every row here")
    p.add_argument("--cell", nargs=2, type=int, metavar=("RES", "BATCH"),
                   help="internal: measure one cell in this process and print one JSON line")
    args = p.parse_args()

    if args.cell:
        print(json.dumps(run_cell(args.cell[0], args.cell[1], args)), flush=True)
        return

    env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join([sys.executable, *sys.argv])])
    rows: list[dict[str, Any]] = []
    for res in args.res:
        oom_at = None
        for b in args.batch:
            if oom_at is not None and b > oom_at:  # memory grows with the batch: this one fails too
                rows.append({"res": res, "batch": b, "status": "oom", "skipped": True,
                             "error": f"not run: batch {oom_at} already ran out of memory"})
                continue
            t0 = time.perf_counter()
            r = measure(res, b, args)
            rows.append(r)
            rate = f"{r['steps_per_s']:.2f} steps/s" if r["status"] == "ok" else r["status"]
            print(f"res {res} batch {b}: {rate} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
            if r["status"] == "oom":
                oom_at = b

    first = next((r for r in rows if "torch" in r), {})
    modes = sorted({r["step_mode"] for r in rows if "step_mode" in r})
    peak = {"cuda": "torch.cuda.max_memory_allocated (data, networks, optimiser, graph pool, temporaries)",
            "cpu": "VmHWM of the cell's process from engine build to the end of timing (after data loading)"}
    dev_type = str(first.get("device", args.device)).split(":")[0]
    print(f"# {args.preset}: gankit training step (Engine.step), steps/s, images/s and peak memory")
    print()
    print(f"- device: {first.get('device', args.device)} ({first.get('device_name', '?')}), "
          f"torch {first.get('torch', '?')}, {first.get('threads', '?')} threads, "
          f"CPU capability {first.get('cpu_capability', '?')}, Python {platform.python_version()}")
    print(f"- data: {args.data}; warm-up {args.warmup} steps"
          f"{f' (at least {CUDA_MIN_WARMUP} on CUDA)' if dev_type != 'cpu' else ''}; "
          f"timed >= {args.seconds:g} s and >= {args.min_steps} steps per cell; one process per cell")
    print(f"- peak memory: {peak.get(dev_type, peak['cpu'])}")
    for m in modes or ["(no cell built an engine)"]:
        print(f"- {m}")
    print(f"- command: `{command}`")
    print()
    print(_table(rows, args.res, args.batch))
    notes = [r for r in rows if r["status"] not in ("ok",) and not r.get("skipped")]
    for r in notes:
        print(f"\n{r['res']}px batch {r['batch']}: {r['status']}: {r.get('error', '')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "args": {k: v for k, v in vars(args).items()
                                                                              if k != "cell"},
                                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
