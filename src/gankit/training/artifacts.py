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
    checkpoints/last.pt      see gankit.training.checkpoint (the format), .store (the directory)
    tensorboard/             TensorBoard event files of all the above (log.tensorboard;
                             gankit.training.tensorboard)

These files are views of the run: one the machine refuses to write (a full disk, a read-only
folder) is a one-line warning, once per file, and the run goes on; its checkpoints, the one thing
a run must not lose, are handled apart (gankit.training.loop).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from typing import Callable

from gankit import disk, viz
from gankit.config import to_dict
from gankit.errors import warn
from gankit.report import write_report
from gankit.training import tensorboard


class Artifacts:
    """The run directory's files besides checkpoints; `grid(step)` calls the task's grid writer."""

    def __init__(self, out: Path, grid_writer: Callable[[int, Path], Path]):
        self.out = out
        self.samples = out / "samples"
        self.metrics = out / "metrics.jsonl"
        self._grid = grid_writer
        self._report_failed = False
        self._refused: set[str] = set()  # the files the machine refused, each warned about once
        self.board: tensorboard.Board | None = None  # RUN/tensorboard/, when on (`open_board`)

    def _tolerated(self, name: str, e: Exception, path: Path) -> bool:
        """Whether `e` is the machine refusing to write `path` (then warned about, once per `name`,
        and the run goes on); anything else is our bug, for the caller to raise."""
        err = disk.error(e, path)
        if err is None:
            return False
        if name not in self._refused:
            self._refused.add(name)
            msg = f"{err}; training goes on without it"
            warn(msg)
            if name != "train.log":
                self.note(f"warning: {msg}")
        return True

    def forget_after(self, step: int) -> None:
        """On resume: drop log lines written after the checkpoint, which the resumed run redoes."""
        if not self.metrics.exists():
            return
        rows = [r for r in viz.read_jsonl(self.metrics) if r["step"] <= step]
        with disk.atomic(self.metrics) as tmp:
            tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))

    def open_board(self, cfg, step: int) -> None:
        """Start this training call's TensorBoard events at `step` (`log.tensorboard`; auto and the
        package missing: said once, in train.log and on the terminal)."""
        if cfg.log.tensorboard is False:
            return
        why = tensorboard.missing()  # true and missing was refused before the run started (tensorboard.check)
        if why:
            self.note(f"TensorBoard: off, {why}; {tensorboard.INSTALL} to get event files "
                      "(log.tensorboard=false: not said again)", echo=cfg.log.progress)
            return
        where = self.out / "tensorboard"
        try:
            self.board = tensorboard.Board(where, step, to_dict(cfg))
        except Exception as e:
            if not self._tolerated("tensorboard/", e, where):
                raise
            return
        self.note(f"TensorBoard: event files in {where}; view with: tensorboard --logdir {where}",
                  echo=cfg.log.progress)

    def _to_board(self, method: str, *args) -> None:
        """`board.method(*args)`; a write the machine refuses ends the event files (warned once),
        not the run."""
        if self.board is None:
            return
        try:
            getattr(self.board, method)(*args)
        except Exception as e:
            if not self._tolerated("tensorboard/", e, self.board.dir):
                raise
            self.board.drop()
            self.board = None

    def flush(self) -> None:
        """At a checkpoint: the events so far to disk, so a crash after it loses none of them."""
        self._to_board("flush")

    def rewind(self, step: int) -> None:
        """After a rollback to `step`: TensorBoard hides what the abandoned steps wrote."""
        self._to_board("rewind", step)

    def note(self, msg: str, echo: bool = False) -> None:
        """A line of the run's story (how the step runs, rollbacks) in train.log; echoed to stderr."""
        path = self.out / "train.log"
        try:
            disk.append_line(path, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        except Exception as e:
            if not self._tolerated("train.log", e, path):
                raise
        if echo:
            print(f"gankit: {msg}", file=sys.stderr)

    def log(self, row: dict) -> None:
        """One metrics.jsonl row: the one sink of the run's scalars (TensorBoard's too)."""
        try:
            disk.append_line(self.metrics, json.dumps(row, separators=(",", ":")) + "\n")
        except Exception as e:
            if not self._tolerated("metrics.jsonl", e, self.metrics):
                raise
        self._to_board("log", row)

    def grid(self, step: int) -> Path | None:
        path = self.samples / f"step_{step:06d}.png"
        if self._write("samples/", path, self._grid, step, path) is None:
            return None
        self._to_board("image", "samples", path, step)
        return path

    def preview(self, images) -> Path | None:
        """data.png: uint8 (N, C, H, W) training images, or nothing when the task gives None."""
        if images is None:
            return None
        path = self._write("data.png", self.out / "data.png", viz.save_grid, images, self.out / "data.png")
        if path is not None:
            self._to_board("image", "data", path, 0)
        return path

    def plots(self) -> None:
        self._write("loss.png", self.out / "loss.png", viz.plot_losses, self.metrics, self.out / "loss.png")
        self.report()

    def plot_metrics(self) -> None:
        """metrics.png: the evaluations so far (see `viz.plot_metrics`)."""
        self._write("metrics.png", self.out / "metrics.png", viz.plot_metrics, self.metrics, self.out / "metrics.png")

    def report(self) -> Path | None:
        """Refresh report.html. It is a view of the files above: a failure to render it is noted
        once and never stops the run (the checkpoints and logs it would show are intact)."""
        try:
            return write_report(self.out)
        except Exception as e:  # noqa: BLE001 - a bug in the page must not cost a training run
            if not self._tolerated("report.html", e, self.out / "report.html") and not self._report_failed:
                self._report_failed = True
                msg = f"report.html not written: {type(e).__name__}: {e}"
                self.note(f"warning: {msg}")
                warn(msg)
            return None

    def finish(self) -> None:
        gif = self.out / "progress.gif"
        self._write("progress.gif", gif, viz.make_gif, sorted(self.samples.glob("step_*.png")), gif)
        self.report()  # once more, with the animation
        self._to_board("close")
        self.board = None

    def _write(self, name: str, path: Path, writer, *args):
        """`writer(*args)`, which writes `path`; None when the machine refuses (see `_tolerated`)."""
        try:
            return writer(*args)
        except Exception as e:
            if not self._tolerated(name, e, path):
                raise
            return None
