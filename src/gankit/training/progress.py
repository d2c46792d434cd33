"""The live progress bar: step, losses, D accuracy, steps/s and ETA, on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                        dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def advance(self) -> None:
        self.bar.update(1)  # a counter only: no device sync

    def show(self, row: dict) -> None:
        self.bar.set_postfix_str(
            f"loss_D {row['loss_d']:.3f} loss_G {row['loss_g']:.3f} "
            f"acc_D {row['acc']:.2f} ({row['steps_per_s']:.0f} steps/s)", refresh=False)

    def close(self) -> None:
        self.bar.close()
