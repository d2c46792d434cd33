"""What keeps a run alive: stop signals that end training cleanly, and a guard that refuses
non-finite updates.

`StopSignals`: SIGINT and SIGTERM set a flag; the loop finishes its step, writes a checkpoint and
returns. A second SIGINT stops at once (KeyboardInterrupt), for a trainer that must die now.

`NonFiniteGuard`: after backward, before the optimiser steps, checks the loss and the gradient
norms; a non-finite update is not applied. With fused Adam the verdict stays on the device (the
kernel's `found_inf` flag); other optimisers pay one host sync per update.
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
    """`ok(loss, params, opt)` says whether an update may be applied; `end_step()` counts steps with a
    refused update in a row (`consecutive`) and in all (`total`).

    With a fused optimiser (Adam, `fused=True`) the check stays on the device: the verdict goes to
    the optimiser as its `found_inf` flag, and the fused kernel skips the whole update (weights,
    moments and step count) when it is set. Nothing is read back to the host until `consecutive`
    or `total` is asked for, which the loop does every `log.every` steps. Other optimisers get a
    host-side check: one sync per update (free on CPU)."""

    def __init__(self, enabled: bool = True, device: torch.device | str = "cpu"):
        self.enabled = enabled
        self.on_device = False  # set by the engine when every optimiser honours found_inf
        self._cons_host = 0  # host-side counters (optimisers without found_inf)
        self._total_host = 0
        self._bad_host = False
        self._bad = torch.zeros((), device=device)  # device-side: this step had a refused update
        self._cons = torch.zeros((), device=device)
        self._total = torch.zeros((), device=device)

    @property
    def consecutive(self) -> int:
        """Steps in a row, up to the last one, with at least one refused update (a host read)."""
        return self._cons_host + int(self._cons.item())

    @consecutive.setter
    def consecutive(self, value: int) -> None:
        self._cons_host = int(value)
        self._cons.zero_()

    @property
    def total(self) -> int:
        """Refused updates in all (a host read)."""
        return self._total_host + int(self._total.item())

    def ok(self, loss: Tensor, params, opt: torch.optim.Optimizer | None = None) -> bool:
        if not self.enabled:
            return True
        grads = [p.grad for p in params if p.grad is not None]
        norms = torch._foreach_norm(grads) if grads else []
        values = torch.stack([loss.detach().float().reshape(())] + [n.float() for n in norms])
        bad = (~torch.isfinite(values).all()).float()
        if opt is not None and uses_found_inf(opt):  # the fused kernel skips the update on the device
            opt.grad_scale, opt.found_inf = None, bad
            self._bad.copy_(torch.maximum(self._bad, bad))
            self._total.add_(bad)
            return True
        good = not bool(bad)  # the one host sync
        if not good:
            self._total_host += 1
            self._bad_host = True
        return good

    def end_step(self) -> None:
        self._cons_host = self._cons_host + 1 if self._bad_host else 0
        self._bad_host = False
        self._cons.add_(1).mul_(self._bad)  # +1 after a refused update, else back to 0
        self._bad.zero_()


def uses_found_inf(opt: torch.optim.Optimizer) -> bool:
    """True for optimisers whose fused kernel honours `found_inf` (skips the step when it is 1)."""
    return isinstance(opt, torch.optim.Adam) and bool(opt.defaults.get("fused"))


def all_finite(*modules: torch.nn.Module) -> bool:
    """True when every parameter and buffer is finite: checked before a checkpoint is written."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True
