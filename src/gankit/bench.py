"""`gankit bench`: training speed of gankit's loop against the tutorial's loop, in one process.

(a) The reference is the task's plain loop (`Task.reference_loop`); the generation task's is the
    tutorial's loop as a user would write it from the listing (`gankit.tasks.generate.tutorial`):
    a torch DataLoader over a Dataset that turns each uint8 image into a PIL image and back into a
    normalised tensor, D ending in a Sigmoid with nn.BCELoss, a real and a fake backward pass for
    D, and a second generator forward for G.
(b) gankit: the trainer's own step (`gankit.training.engine`): the data resident on the device as
    uint8, batches by index, scaling fused into the step, one generator forward per step, losses
    on logits, fused Adam with the non-finite guard on the device, scalars kept on the device,
    and on CUDA the whole step replayed as one CUDA graph; once with fp32 forwards and once with
    bf16 autocast.

All train the same architecture (the preset's) at the same batch size with the same optimiser
for `seconds` each. The time is split into `rounds` alternating rounds (a, b32, b16, a, ...), so a
machine that slows down or speeds up mid-run (a noisy neighbour, thermal limits) affects all
alike; a ratio is the median of the per-round ratios, and steps/s are totals over all rounds.
The headline ratio is gankit in the precision a training run would use (`train.precision`; for
auto, what `gankit.training.precision.choose` picks: its cached or freshly measured verdict) over
the reference; `--precision` pins it.
Peak memory is measured while each loop is built and warmed up alone, before the timed rounds: on
CUDA torch's peak allocation above what was allocated before, on CPU the growth of the process's
peak resident set ((a) first, so (b)'s figure is only what it adds above (a)'s peak).
"""

from __future__ import annotations

import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks import get_task
from gankit.util import resolve_device
from gankit.training.engine import Engine
from gankit.training.precision import choose
from gankit.training.profile import StepProfiler


def _peak_of(fn, device: torch.device):
    """(fn(), the peak memory fn adds): CUDA allocations above the start, or RSS peak growth."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return out, torch.cuda.max_memory_allocated(device) - base
    return out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def _timed(step_fn, seconds: float, device: torch.device) -> tuple[int, float]:
    """Steps of step_fn run in `seconds` (at least one), and the time they took."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < seconds:
        step_fn()
        n += 1
        if device.type == "cuda" and n % 50 == 0:
            torch.cuda.synchronize(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n, time.perf_counter() - t0


def gankit_loop(cfg, data, device: torch.device, precision: str | None = None):
    """gankit's training step (`gankit.training.engine`, as the trainer runs it, CUDA graph
    included) over device-resident data in `precision` ("fp32" | "bf16"; default: without
    measuring), without the trainer's logging and checkpoints: returns (step function, the engine)."""
    e = Engine.build(cfg, data.to(device), device, precision=precision)
    t = iter(range(1 << 62))

    def step():
        e.step(next(t))

    return step, e


def _result(n: int, secs: float, batch: int, peak: int) -> dict:
    return {"steps_per_s": round(n / secs, 2), "images_per_s": round(n * batch / secs, 1),
            "peak_mem_bytes": int(max(peak, 0))}


def run_bench(preset: str = "seed-mlp", device: str = "auto", batch: int | None = None,
              seconds: float = 10.0, data: str = "mnist", precision: str | None = None,
              overrides: list[str] | None = None, rounds: int = 5, profile: int = 0,
              profile_dir: str | Path | None = None) -> dict:
    """The reference loop and gankit's in fp32 and in bf16 for `preset` (with `overrides`, `--set`
    strings, applied to gankit's config), `seconds` each in `rounds` alternating rounds. The
    headline `gankit` / `ratio` are for `precision` (default: the config's train.precision, auto
    resolved as a run of it would resolve it). With `profile` > 0, then a profiler trace of that many
    of gankit's steps (after the timed rounds, so it costs them nothing) under
    `profile_dir`/profile/."""
    sets = [f"data.source={data}"] + ([f"train.batch={batch}"] if batch else [])
    sets += [f"train.precision={precision}"] if precision else []
    sets += list(overrides or [])
    cfg = load_config(preset, overrides=sets)
    dev = resolve_device(device)
    task = get_task(cfg.task)
    ds = task.load_data(cfg, torch.device("cpu"))
    loops = ("reference", "fp32", "bf16")

    if task.reference_loop is None:
        raise GankitError(f"gankit bench times a task's step against its reference loop; the {cfg.task!r} task "
                          f"(preset {preset}) has none")

    def ready_reference():
        step = task.reference_loop(cfg, ds, dev)
        for _ in range(3):
            step()
        return step

    def ready_gankit(p: str):
        def ready():
            step, engine = gankit_loop(cfg, ds, dev, p)
            for _ in range(10):  # covers the CUDA graph's warm-up runs and capture
                step()
            return step, engine
        return ready

    steps, peaks, engines = {}, {}, {}
    steps["reference"], peaks["reference"] = _peak_of(ready_reference, dev)
    for p in loops[1:]:
        (steps[p], engines[p]), peaks[p] = _peak_of(ready_gankit(p), dev)
    counts = {name: [] for name in loops}  # (steps, seconds) per round
    for _ in range(rounds):
        for name in loops:
            counts[name].append(_timed(steps[name], seconds / rounds, dev))
    for e in engines.values():
        e.st.acc.tolist()  # read once at the end, as the trainer does every K steps

    # What a run of this config would train in under auto (its cached or freshly measured verdict);
    # after the peaks and the timed rounds, so its probe's engines count in neither.
    auto = choose(replace(cfg, train=replace(cfg.train, precision="auto")), ds.to(dev), dev, task,
                  cfg.train.steps)

    def ratios(name: str) -> list[float]:
        return [(n_b / t_b) / (n_a / t_a) for (n_a, t_a), (n_b, t_b) in zip(counts["reference"], counts[name])]

    head = auto.name if cfg.train.precision == "auto" else cfg.train.precision
    out = {"preset": preset, "device": str(dev), "batch": cfg.train.batch, "precision": head,
           "auto": {"choice": auto.name, "why": auto.why}}
    for name in loops:
        n, secs = (sum(c[i] for c in counts[name]) for i in (0, 1))
        key = name if name == "reference" else f"gankit_{name}"
        out[key] = _result(n, secs, cfg.train.batch, peaks[name])
        if name != "reference":
            out[f"ratio_{name}"] = round(float(np.median(ratios(name))), 2)
    out["gankit"] = out[f"gankit_{head}"]
    out = {**out, "ratio": out[f"ratio_{head}"], "ratio_rounds": [round(r, 2) for r in ratios(head)],
           "step_mode": engines[head].describe()}
    if profile:
        our_step = steps[head]
        prof = StepProfiler(Path(profile_dir or f"runs/bench-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"), profile, dev)
        for _ in range(StepProfiler.needed(profile)):
            our_step()
            prof.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        out["profile"] = {"steps": profile, "trace": str(prof.trace), "top_ops": str(prof.dir / "top_ops.txt"),
                          "table": prof.close()}
    return out
