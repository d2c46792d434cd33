"""What keeps a run alive: stop signals that end training cleanly, and a guard that refuses
non-finite updates.

`StopSignals`: SIGINT and SIGTERM set a flag; the loop finishes its step, writes a checkpoint and
returns. A second SIGINT stops at once (KeyboardInterrupt), for a trainer that must die now.

`NonFiniteGuard`: after backward, before the optimiser steps, checks the loss and the gradient
norms; a non-finite update is not applied. It costs one host sync per update (free on CPU), which
`recover.skip_nonfinite: false` removes for the last bit of GPU speed.
"""

from __future__ import annotations

import signal
import threading

import torch
from torch import Tensor


class StopSignals:
    def __init__(self):
        self.signame: str | None = None
        self._old: dict = {}

    def _handle(self, signum, frame):
        if self.signame is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signame = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal handlers live there
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


class NonFiniteGuard:
    """`ok(loss, params)` says whether an update may be applied; `end_step()` counts steps with a
    refused update in a row (`consecutive`) and in all (`total`)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.consecutive = 0  # steps in a row with at least one refused update
        self.total = 0  # refused updates in all
        self._bad_this_step = False

    def ok(self, loss: Tensor, params) -> bool:
        if not self.enabled:
            return True
        grads = [p.grad for p in params if p.grad is not None]
        norms = torch._foreach_norm(grads) if grads else []
        values = torch.stack([loss.detach().float().reshape(())] + [n.float() for n in norms])
        good = bool(torch.isfinite(values).all())  # the one host sync
        if not good:
            self.total += 1
            self._bad_this_step = True
        return good

    def end_step(self) -> None:
        self.consecutive = self.consecutive + 1 if self._bad_this_step else 0
        self._bad_this_step = False


def all_finite(*modules: torch.nn.Module) -> bool:
    """True when every parameter and buffer is finite: checked before a checkpoint is written."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True
