"""Run a task's step function eagerly, graph-shaped, or as replayed CUDA graphs.

`StepRunner(fn, mode)`, called as `runner(inputs, flags)`, runs `fn(inputs, flags)`:

- ``eager``: as given.
- ``static``: `inputs` (nested tuples of tensors and None) are first copied into buffers allocated
  on the first call, and `fn` runs on the buffers. This is the captured function without the
  capture; on CPU it is how the tests prove it equals the eager step.
- ``graph`` (CUDA): as static, and each distinct `flags` value is warmed up `WARMUP` times on a
  side stream (lazy initialisations, autotuning), then captured once as a CUDA graph and replayed
  from then on. `forget()` drops the graphs (after a checkpoint is loaded into the tensors they
  were captured with, e.g. on rollback); the next calls warm up and capture again.

Nothing here knows what the step computes.
"""

from __future__ import annotations

from typing import Callable

import torch

WARMUP = 3  # eager-equivalent runs of each step variant before it is captured


def _alloc(tree):
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return torch.empty_like(tree)
    return tuple(_alloc(t) for t in tree)


def _copy(dst, src) -> None:
    if dst is None:
        return
    if isinstance(dst, torch.Tensor):
        dst.copy_(src)
        return
    for d, s in zip(dst, src):
        _copy(d, s)


class StepRunner:
    def __init__(self, fn: Callable, mode: str, device: torch.device,
                 before_capture: Callable[[], None] | None = None):
        if mode not in ("eager", "static", "graph"):
            raise ValueError(f"step mode {mode!r}; expected eager, static or graph")
        self.fn, self.mode, self.device = fn, mode, device
        self.before_capture = before_capture  # e.g. drop .grad tensors so the graph allocates its own
        self._static = None
        self._graphs: dict = {}
        self._runs: dict = {}

    def __call__(self, inputs, flags) -> None:
        if self.mode == "eager":
            self.fn(inputs, flags)
            return
        if self._static is None:
            self._static = _alloc(inputs)
        _copy(self._static, inputs)
        if self.mode == "static":
            self.fn(self._static, flags)
            return
        g = self._graphs.get(flags)
        if g is not None:
            g.replay()
            return
        runs = self._runs.get(flags, 0)
        if runs < WARMUP:  # warm up this variant on a side stream (allocations, autotuning)
            s = torch.cuda.Stream(self.device)
            s.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(s):
                self.fn(self._static, flags)
            torch.cuda.current_stream(self.device).wait_stream(s)
            self._runs[flags] = runs + 1
            return
        g = torch.cuda.CUDAGraph()
        if self.before_capture:
            self.before_capture()
        with torch.cuda.graph(g):
            self.fn(self._static, flags)  # recorded, not run
        self._graphs[flags] = g
        g.replay()

    def forget(self) -> None:
        """Drop captured graphs and warm-up counts: a graph replays kernels on the tensors it was
        captured with, which loading a checkpoint replaces."""
        self._graphs.clear()
        self._runs.clear()
