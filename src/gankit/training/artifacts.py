"""What a training run writes besides checkpoints: metrics.jsonl, sample grids, plots, animation.

Layout of a run directory:
    config.yaml              the resolved config
    metrics.jsonl            one JSON object per log step
    train.log                how the step runs (CUDA graph or eager, and why), rollbacks
    samples/step_NNNNNN.png  the fixed latent batch through G (scatter plot for 2-D data);
                             one class (or InfoGAN code) per row for conditional models
    progress.gif             those grids in order
    loss.png                 losses and D accuracy against step
    checkpoints/last.pt      see gankit.training.checkpoint
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from gankit import viz
from gankit.config import RunConfig
from gankit.data import Dataset, from_model
from gankit.models.latent import draw_latent

SCATTER_POINTS = 1024  # generated points in each toy scatter plot
SCATTER_REAL = 2048  # real points drawn under it


def grid_latents(cfg: RunConfig, n: int, n_classes: int, seed: int, device) -> tuple:
    """(G input, labels or None, images per row) for a grid of about n samples.

    Conditional models get one class per row; InfoGAN models one categorical code per row.
    Latents are drawn on the CPU, so the same seed gives the same grid on every device."""
    g = torch.Generator().manual_seed(seed)
    rows = n_classes if cfg.model.conditional else cfg.model.info_cat
    y = c_cat = None
    if rows:
        cols = max(1, n // rows)
        n = rows * cols
        per_row = torch.arange(rows).repeat_interleave(cols)  # (rows * cols,)
        y = per_row if cfg.model.conditional else None
        c_cat = per_row if not cfg.model.conditional else None
    else:
        cols = None
    lat = draw_latent(cfg.model, n, g, "cpu", c_cat=c_cat)
    to = (lambda t: None if t is None else t.to(device))
    return to(lat.z_in), to(y), cols


class Artifacts:
    def __init__(self, out: Path, data: Dataset, cfg: RunConfig, n_classes: int = 0):
        self.out, self.data = out, data
        self.samples = out / "samples"
        self.metrics = out / "metrics.jsonl"
        device = data.x.device
        n = cfg.log.grid_n if data.kind == "image" else SCATTER_POINTS
        self.z, self.y, self.nrow = grid_latents(cfg, n, n_classes, cfg.seed + 2, device)
        if data.kind == "points":
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(len(data), generator=g)[:SCATTER_REAL].to(device)
            self.real_points = data.x[idx]

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

    @torch.no_grad()
    def grid(self, G: torch.nn.Module, step: int) -> Path:
        was_training = G.training
        G.eval()
        x = from_model(G(self.z, self.y), self.data.kind, self.data.scale)
        G.train(was_training)
        path = self.samples / f"step_{step:06d}.png"
        if self.data.kind == "points":
            return viz.save_scatter(x, path, real=self.real_points, title=f"step {step}")
        return viz.save_grid(x, path, nrow=self.nrow)

    def plots(self) -> None:
        viz.plot_losses(self.metrics, self.out / "loss.png")

    def finish(self) -> None:
        viz.make_gif(sorted(self.samples.glob("step_*.png")), self.out / "progress.gif")
