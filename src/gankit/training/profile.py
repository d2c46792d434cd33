"""`gankit train --profile N` / `gankit bench --profile N`: a PyTorch profiler trace of N training
steps after a warm-up, and the top operators by self time.

The trace is written by `torch.profiler.tensorboard_trace_handler` as `RUN/profile/*.pt.trace.json`:
a Chrome trace that Perfetto (ui.perfetto.dev, "Open trace file") and TensorBoard's profiler
plugin both open. The table of the top operators by self time (CPU, and CUDA on a GPU) is printed
at the end and saved beside it as `top_ops.txt`. With the profile off, nothing is created and the
loop pays one `None` check per step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

WAIT = 4  # steps skipped first: lazy initialisation, the engine's warm-up and CUDA-graph capture
WARMUP = 1  # one profiled step thrown away (the profiler's own start-up)


class StepProfiler:
    """Profile `steps` training steps after WAIT + WARMUP steps; `step()` after each step."""

    def __init__(self, out: Path, steps: int, device: torch.device):
        self.dir = Path(out) / "profile"
        self.dir.mkdir(parents=True, exist_ok=True)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        self.sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        self.steps, self.done = steps, 0
        self.prof = profile(activities=acts, schedule=schedule(wait=WAIT, warmup=WARMUP, active=steps, repeat=1),
                            on_trace_ready=tensorboard_trace_handler(str(self.dir)), record_shapes=True)
        self.prof.__enter__()

    @staticmethod
    def needed(steps: int) -> int:
        """Training steps a profile of `steps` steps needs."""
        return WAIT + WARMUP + steps

    def step(self) -> None:
        if self.prof is None:
            return
        self.prof.step()
        self.done += 1
        if self.done >= self.needed(self.steps):
            self.close()

    def close(self) -> str | None:
        """Stop profiling; write and return the top-operators table (None if nothing was recorded)."""
        if self.prof is None:
            return getattr(self, "table", None)
        prof, self.prof = self.prof, None
        prof.__exit__(None, None, None)
        if self.done < self.needed(self.steps):
            self.table = None
            return None
        self.table = prof.key_averages().table(sort_by=self.sort, row_limit=20)
        (self.dir / "top_ops.txt").write_text(self.table + "\n")
        return self.table

    @property
    def trace(self) -> Path | None:
        found = sorted(self.dir.glob("*.pt.trace.json"))
        return found[-1] if found else None
