"""The live progress bar: step, losses, D accuracy (or L1 / cycle loss), steps/s and ETA, on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                        dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def advance(self) -> None:
        self.bar.update(1)  # a counter only: no device sync

    def at(self, step: int) -> None:
        """Show `step` as the current one (after a rollback)."""
        self.bar.n = step

    def show(self, row: dict) -> None:
        shown = "".join(f"{label} {row[k]:.{p}f} " for k, label, p in
                        (("loss_d", "loss_D", 3), ("loss_g", "loss_G", 3), ("acc", "acc_D", 2), ("l1", "L1", 3),
                         ("cycle", "cycle", 3)) if k in row)  # what this task logs
        self.bar.set_postfix_str(f"{shown}({row['steps_per_s']:.0f} steps/s)", refresh=False)

    def close(self) -> None:
        self.bar.close()
