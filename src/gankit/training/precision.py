"""`train.precision`: what a run's forward passes compute in, decided once per run.

An explicit `fp32` or `bf16` is obeyed and never measured. `auto`:

- a task whose phases ignore the precision (`Task.honours_precision` false) runs fp32;
- on CUDA, bf16 where the GPU supports it (not measured);
- on a CPU, the run's own step is measured: after a warm-up step, real steps of this config's
  step function in fp32 and in bf16, on throwaway copies of the run's state (the run's weights,
  optimisers and random streams are untouched), in alternating rounds; one step each suffices
  when one precision is `CLEAR` times slower (bf16 without the CPU's native support is emulated,
  ~20x slower). bf16 is chosen only when it is faster by `MARGIN`. CPU flags do not predict that:
  an Intel Xeon with avx512_bf16 ran seed-mlp 1.7x slower in bf16, an AMD EPYC with the same flag
  1.1-1.7x faster. The verdict is cached per CPU model, torch version, thread count and a
  signature of the networks and batch in `<cache>/precision.json`, so later runs pay nothing; a
  run too short to repay the probe (`MIN_STEPS` steps) runs fp32 without one.

A resumed run keeps the precision it started with (its checkpoints record it), so `auto` never
switches precision half-way through a run.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import time
from dataclasses import dataclass, replace

import torch

from gankit.config import RunConfig, to_dict
from gankit.util import cache_dir, native_bf16_cpu, write_text_atomic

MARGIN = 1.10  # bf16 must take <= 1/1.10 of fp32's time per step: a clear win, not noise
MIN_STEPS = 500  # runs with fewer steps left are too short to repay a probe: fp32, unmeasured
PROBE_SECONDS = 3.0  # timed steps of the probe, both precisions together (warm-up excluded)
ROUNDS = 3  # alternating fp32/bf16 rounds: a machine slowing down mid-probe affects both
CLEAR = 2.0  # one precision this many times slower after one step: decided without the rounds
CACHE_NAME = "precision.json"


@dataclass(frozen=True)
class Choice:
    """A run's precision and why; the probe's per-step times when it was measured."""

    name: str  # "fp32" | "bf16"
    why: str  # one line for train.log
    fp32_ms: float | None = None
    bf16_ms: float | None = None

    def note(self) -> str:
        return f"precision: {self.name} ({self.why})"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def signature(cfg: RunConfig, shape: tuple, world: int = 1) -> str:
    """What the step's cost depends on: the task, networks, objective, batch, step settings and
    the data's shape (not its source, seed, length, learning rates' values or logging)."""
    d = to_dict(cfg)
    d.pop("seed", None), d.pop("preset", None), d.pop("device", None)
    for section in ("log", "eval", "recover"):
        d.pop(section, None)
    d["data"] = {k: v for k, v in d.get("data", {}).items() if k not in ("source", "strict")}
    d["train"] = {k: v for k, v in d.get("train", {}).items()
                  if k not in ("steps", "max_seconds", "precision", "init", "lr_g", "lr_d")}
    d["shape"], d["world"] = list(shape), world
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_key(cfg: RunConfig, shape: tuple, world: int = 1) -> str:
    return (f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
            f"{signature(cfg, shape, world)}")


def _read_cache() -> dict:
    try:
        d = json.loads((cache_dir() / CACHE_NAME).read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or damaged: measure again


def _write_cache(key: str, entry: dict) -> str | None:
    """Remember `entry` under `key`; None when written, else why not (the run goes on regardless)."""
    d = _read_cache()
    d[key] = entry
    try:
        write_text_atomic(cache_dir() / CACHE_NAME, json.dumps(d, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        return f"{cache_dir() / CACHE_NAME} not written ({e.strerror or e})"
    return None


def verdict(fp32_ms: float, bf16_ms: float) -> str:
    """bf16 when it is faster by MARGIN, else fp32."""
    return "bf16" if fp32_ms >= MARGIN * bf16_ms else "fp32"


def _describe(fp32_ms: float, bf16_ms: float, how: str) -> str:
    name = verdict(fp32_ms, bf16_ms)
    speed = f"bf16 {fp32_ms / bf16_ms:.2f}x fp32's speed"
    rule = "faster by the margin" if name == "bf16" else f"not {MARGIN:.2f}x faster"
    return f"auto, {how}: fp32 {fp32_ms:.2f} ms/step, bf16 {bf16_ms:.2f} ms/step, {speed}, {rule}"


def measure(cfg: RunConfig, data, device: torch.device, seconds: float = PROBE_SECONDS) -> dict[str, float]:
    """Milliseconds per training step of `cfg` on `data` in fp32 and in bf16, each on its own
    throwaway engine: one warm-up step each, one timed step each, then (unless one precision is
    already CLEAR times slower: emulated bf16 is ~20x, and its steps are what a probe must not
    spend) the medians over that step and up to ROUNDS alternating rounds of about `seconds` in all
    (with steps slower than `seconds`, one round of one step each)."""
    from gankit.training.engine import Engine  # the engine resolves precision through this module

    engines = {p: Engine.build(cfg, data, device, mode="eager", precision=p) for p in ("fp32", "bf16")}
    t = iter(range(1 << 62))

    def timed(e, k: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(k):
            e.step(next(t))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for e in engines.values():  # warm-up: allocations, oneDNN's primitives for each shape
        timed(e, 1)
    first = {p: timed(e, 1) for p, e in engines.items()}
    if max(first.values()) > CLEAR * min(first.values()):
        return {p: 1000 * v for p, v in first.items()}
    pair = max(sum(first.values()), 1e-6)  # one step of each
    rounds = max(1, min(ROUNDS, int(seconds / pair)))  # slow steps: fewer rounds, not more seconds
    k = max(1, min(100, int(seconds / rounds / pair)))
    per = {p: [v] for p, v in first.items()}
    for r in range(rounds):
        for p in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
            per[p].append(timed(engines[p], k) / k)
    return {p: 1000 * statistics.median(v) for p, v in per.items()}


def choose(cfg: RunConfig, data, device: torch.device, task, steps_left: int, ckpt: dict | None = None,
           world: int = 1, probe=None) -> Choice:
    """The precision a run of `cfg` trains in (see the module docstring). `ckpt`: the checkpoint a
    resumed run continues from (its recorded precision is kept). `probe`: the measuring function
    (tests replace it)."""
    if not task.honours_precision:
        return Choice("fp32", f"the {task.name} task runs in fp32; train.precision {cfg.train.precision} not used")
    if cfg.train.precision != "auto" or device.type != "cpu":
        return Choice(*resolve_precision(cfg.train.precision, device))
    if ckpt is not None and ckpt.get("precision") in ("fp32", "bf16"):
        return Choice(ckpt["precision"], "auto, as chosen when this run started (its checkpoint records it)")
    flag = native_bf16_cpu()
    isa = f"{flag}" if flag else f"no native bf16, capability {torch.backends.cpu.get_cpu_capability()}"
    shape = tuple(data.shape)
    key = cache_key(cfg, shape, world)
    hit = _read_cache().get(key)
    if isinstance(hit, dict) and {"fp32_ms", "bf16_ms"} <= hit.keys():
        a, b = float(hit["fp32_ms"]), float(hit["bf16_ms"])
        return Choice(verdict(a, b), _describe(a, b, f"measured {hit.get('when', '?')} on this CPU and config "
                                                     f"(cached in {cache_dir() / CACHE_NAME})"), a, b)
    if steps_left < MIN_STEPS:
        return Choice("fp32", f"auto: {steps_left} steps are too few to repay measuring bf16 on this CPU "
                              f"({isa}); runs of {MIN_STEPS}+ steps measure it")
    probe_cfg = replace(cfg, train=replace(cfg.train, batch=max(1, cfg.train.batch // world)))
    t0 = time.perf_counter()
    ms = (probe or measure)(probe_cfg, data, device)
    spent = time.perf_counter() - t0
    a, b = ms["fp32"], ms["bf16"]
    failed = _write_cache(key, {"fp32_ms": round(a, 4), "bf16_ms": round(b, 4), "choice": verdict(a, b),
                                "when": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "torch": str(torch.__version__),
                                "threads": torch.get_num_threads(), "shape": list(shape), "batch": cfg.train.batch})
    where = f"; {failed}" if failed else f"; cached in {cache_dir() / CACHE_NAME}"
    return Choice(verdict(a, b), _describe(a, b, f"measured now on this CPU ({isa}) in {spent:.1f} s{where}"), a, b)


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """An explicit train.precision, or auto on CUDA -> ("fp32" | "bf16", why): explicit settings
    are obeyed (bf16 where it is emulated says so); auto on CUDA is bf16 where the GPU supports it.
    auto on a CPU is `choose`'s (measured) or `static`'s (fp32) business."""
    if precision == "fp32":
        return "fp32", "train.precision fp32"
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        if precision == "bf16":
            return "bf16", "train.precision bf16" + ("" if native else " (this GPU emulates bf16: expect it slower than fp32)")
        return ("bf16", "auto: this GPU has bf16 (not measured)") if native else ("fp32", "auto: this GPU has no bf16")
    if precision != "bf16":
        raise ValueError(f"resolve_precision({precision!r}) on a CPU: auto there is measured (choose) or fp32 (static)")
    flag = native_bf16_cpu()
    cap = torch.backends.cpu.get_cpu_capability()
    return "bf16", "train.precision bf16" + (f" (native: {flag})" if flag else
                                            f" on a CPU without native bf16 (capability {cap}): expect ~20x slower steps than fp32")


def static(cfg: RunConfig, device: torch.device) -> str:
    """The precision without measuring (engines built outside a trainer): explicit settings as
    given; auto: bf16 on a CUDA GPU with bf16, fp32 on a CPU (the safe choice there)."""
    if cfg.train.precision == "auto" and device.type == "cpu":
        return "fp32"
    return resolve_precision(cfg.train.precision, device)[0]
