"""What a training run writes besides checkpoints: metrics.jsonl, sample grids, plots, animation.

Layout of a run directory:
    config.yaml              the resolved config
    metrics.jsonl            one JSON object per log step
    train.log                how the step runs (CUDA graph or eager, and why), rollbacks
    samples/step_NNNNNN.png  the task's grid at that step (generation: the fixed latent batch
                             through G, one class or InfoGAN code per row; a scatter plot for
                             2-D data; translation: input | output | target of fixed examples)
    progress.gif             those grids in order
    loss.png                 losses and D accuracy against step
    data.png                 a few training images (tasks whose grid does not already show them)
    report.html              all of the above in one self-contained page (gankit.report), refreshed
                             at every grid step and at the end
    checkpoints/last.pt      see gankit.training.checkpoint
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from typing import Callable

from gankit import viz
from gankit.errors import warn
from gankit.report import write_report


class Artifacts:
    """The run directory's files besides checkpoints; `grid(step)` calls the task's grid writer."""

    def __init__(self, out: Path, grid_writer: Callable[[int, Path], Path]):
        self.out = out
        self.samples = out / "samples"
        self.metrics = out / "metrics.jsonl"
        self._grid = grid_writer
        self._report_failed = False

    def forget_after(self, step: int) -> None:
        """On resume: drop log lines written after the checkpoint, which the resumed run redoes."""
        rows = [r for r in viz.read_jsonl(self.metrics) if r["step"] <= step]
        self.metrics.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))

    def note(self, msg: str, echo: bool = False) -> None:
        """A line of the run's story (how the step runs, rollbacks) in train.log; echoed to stderr."""
        with (self.out / "train.log").open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        if echo:
            print(f"gankit: {msg}", file=sys.stderr)

    def log(self, row: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")

    def grid(self, step: int) -> Path:
        return self._grid(step, self.samples / f"step_{step:06d}.png")

    def preview(self, images) -> Path | None:
        """data.png: uint8 (N, C, H, W) training images, or nothing when the task gives None."""
        if images is None:
            return None
        return viz.save_grid(images, self.out / "data.png")

    def plots(self) -> None:
        viz.plot_losses(self.metrics, self.out / "loss.png")
        self.report()

    def report(self) -> Path | None:
        """Refresh report.html. It is a view of the files above: a failure to render it is noted
        once and never stops the run (the checkpoints and logs it would show are intact)."""
        try:
            return write_report(self.out)
        except Exception as e:  # noqa: BLE001 - a bug in the page must not cost a training run
            if not self._report_failed:
                self._report_failed = True
                msg = f"report.html not written: {type(e).__name__}: {e}"
                self.note(f"warning: {msg}")
                warn(msg)
            return None

    def finish(self) -> None:
        viz.make_gif(sorted(self.samples.glob("step_*.png")), self.out / "progress.gif")
        self.report()  # once more, with the animation
