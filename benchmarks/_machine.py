"""What every benchmark records beside its numbers: the CPU model, torch and its CPU capability
(AVX2 vs AVX-512 changes bf16 speed ~20x), the thread count, Python; and a run's training time
as its train.log reports it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def machine() -> dict:
    model = "unknown"
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def training_seconds(run_dir: Path) -> float | None:
    """The training time train.log reports (summed over the calls that trained the run)."""
    total = None
    for ln in (Path(run_dir) / "train.log").read_text(encoding="utf-8").splitlines():
        if "training time:" in ln:
            total = (total or 0.0) + float(ln.split("training time:")[1].split(" s")[0])
    return total
