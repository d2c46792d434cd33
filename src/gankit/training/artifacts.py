"""What a training run writes besides checkpoints: metrics.jsonl, sample grids, plots, animation.

Layout of a run directory:
    config.yaml            the resolved config
    metrics.jsonl          one JSON object per log step
    samples/step_NNNNNN.png  grid of the fixed noise batch (scatter plot for 2-D data)
    progress.gif           those grids in order
    loss.png               losses and D accuracy against step
    checkpoints/last.pt    see gankit.training.checkpoint
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gankit import viz
from gankit.data import Dataset, from_model

SCATTER_REAL = 2048  # real points drawn under each toy scatter plot


class Artifacts:
    def __init__(self, out: Path, data: Dataset, fixed_z: torch.Tensor):
        self.out, self.data, self.fixed_z = out, data, fixed_z
        self.samples = out / "samples"
        self.samples.mkdir(parents=True, exist_ok=True)
        self.metrics = out / "metrics.jsonl"
        if data.kind == "points":
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(len(data), generator=g)[:SCATTER_REAL].to(data.x.device)
            self.real_points = data.x[idx]

    def forget_after(self, step: int) -> None:
        """On resume: drop log lines written after the checkpoint, which the resumed run redoes."""
        rows = [r for r in viz.read_jsonl(self.metrics) if r["step"] <= step]
        self.metrics.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))

    def log(self, row: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")

    @torch.no_grad()
    def grid(self, G: torch.nn.Module, step: int) -> Path:
        was_training = G.training
        G.eval()
        x = from_model(G(self.fixed_z), self.data.kind, self.data.scale)
        G.train(was_training)
        path = self.samples / f"step_{step:06d}.png"
        if self.data.kind == "points":
            return viz.save_scatter(x, path, real=self.real_points, title=f"step {step}")
        return viz.save_grid(x, path)

    def plots(self) -> None:
        viz.plot_losses(self.metrics, self.out / "loss.png")

    def finish(self) -> None:
        viz.make_gif(sorted(self.samples.glob("step_*.png")), self.out / "progress.gif")
