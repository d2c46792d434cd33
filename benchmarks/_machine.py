"""What every benchmark records beside its numbers: the CPU model, torch and its CPU capability
(AVX2 vs AVX-512 changes bf16 speed ~20x), the thread count, Python."""

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
