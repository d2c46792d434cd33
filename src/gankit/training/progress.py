"""Training progress on stderr: step, losses, D accuracy (or L1 / cycle loss), steps/s and ETA.

On a terminal, a live tqdm bar. Anywhere else (a file, a pipe: `nohup`, a batch scheduler,
`> train.out 2>&1`) a bar's refreshes are carriage returns that pile up in the file, so there it
is one plain line per log step instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

SHOWN = (("loss_d", "loss_D", 3), ("loss_g", "loss_G", 3), ("acc", "acc_D", 2), ("l1", "L1", 3),
         ("cycle", "cycle", 3))  # what a task logs, if it does: (key, label, decimals)


def _shown(row: dict) -> str:
    return "".join(f"{label} {row[k]:.{p}f} " for k, label, p in SHOWN if k in row)


def _rate(steps_per_s: float) -> str:
    return f"{steps_per_s:.0f}" if steps_per_s >= 10 else f"{steps_per_s:.2g}"  # 812, 7.9, 0.85


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Steps `initial`..`total` on `stream` (stderr): `advance` every step, `show` at log steps."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total, self.n = total, initial
        plain = enabled and not _is_terminal(self.stream)
        self.bar = None if plain else tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                                           dynamic_ncols=True, file=self.stream, smoothing=0.1)
        self._since = (initial, time.monotonic())  # the ETA's rate: all steps of this call, wall clock

    def advance(self) -> None:
        self.n += 1  # a counter only: no device sync
        if self.bar is not None:
            self.bar.update(1)

    def at(self, step: int) -> None:
        """Show `step` as the current one (after a rollback)."""
        self.n = step
        self._since = (step, time.monotonic())
        if self.bar is not None:
            self.bar.n = step

    def show(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{_shown(row)}({row['steps_per_s']:.0f} steps/s)", refresh=False)
            return
        # Plain: the ETA from the wall clock of this call (grids, evaluations and checkpoints included,
        # as they will be in the steps left); steps/s is the log window's training speed.
        first, t0 = self._since
        done, left = self.n - first, self.total - self.n
        eta = _clock(left * (time.monotonic() - t0) / done) if done > 0 else "-"
        width = len(str(self.total))
        print(f"step {self.n:>{width}}/{self.total} {100 * self.n / max(self.total, 1):3.0f}%  {_shown(row)} "
              f"{_rate(row['steps_per_s'])} steps/s  ETA {eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
