"""What the image-restoration tasks (denoise, inpaint, recon) show and score the same way: the
training grid of fixed held-out images, one per row as input | the run's output | the true image
(`triptych`), and `eval.every` over a held-out evaluation's {set: {method: scores}} (`RestoreEval`,
its row `run_row`: the run's own scores per set, and the PSNR that picks the best checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from gankit import viz
from gankit.util import eval_mode
from gankit.data.dataset import convert_channels
from gankit.tasks.base import HeldOutEval


def triptych(G, restore: Callable[[], Tensor], before: Tensor, truth: Tensor,
             cell: Callable[[Tensor], Tensor] | None = None) -> Callable[[int, Path], Path]:
    """A `Task.grid` writer: G in eval mode makes `restore()`, the outputs for the images `truth`
    from their degraded copies `before` (both (N, C, H, W)); row i is before | output | truth of
    image i, each image (1, C, H, W) drawn by `cell` as a (3, H, W) grid cell (None: uint8 images,
    grey ones as RGB). G's mode is restored after."""
    cell = cell or (lambda t: convert_channels(t, 3)[0])

    def write(step: int, path):
        with eval_mode(G):
            out = restore()
        cells = [cell(t[i:i + 1]) for i in range(len(truth)) for t in (before, out, truth)]
        return viz.save_grid(torch.stack(cells), path, nrow=6)

    return write


def run_row(res: dict, psnr_sets: Sequence[str] | None = None) -> dict:
    """The `eval.every` row of a held-out evaluation `res` ({set: {method: scores}, "protocol": ...}):
    every score of the run's own method ("gankit") as `set/metric`, "psnr" (what the best checkpoint
    is chosen by) the mean over `psnr_sets` (None: every set), and the protocol."""
    sets = [k for k in res if k != "protocol"]
    row = {f"{s}/{m}": v for s in sets for m, v in res[s]["gankit"].items()}
    over = sets if psnr_sets is None else psnr_sets
    row["psnr"] = sum(res[s]["gankit"]["psnr"] for s in over) / len(over)
    return {**row, "protocol": res["protocol"]}


class RestoreEval(HeldOutEval):
    """`eval.every` for a restoration task: `evaluate(cfg, G, device, n, run=, step=)` scores the run
    on held-out images, the row is `run_row` (PSNR averaged over `psnr_sets`, None: every set);
    best by the highest PSNR. `held_out(cfg)` is called once here, so a source without a held-out
    split fails before training, not at the first evaluation."""

    key, higher = "psnr", True

    def __init__(self, cfg, device, dist, evaluate: Callable[..., dict], held_out: Callable,
                 psnr_sets: Sequence[str] | None = None):
        super().__init__(cfg, device, dist)
        held_out(cfg)
        self.evaluate, self.psnr_sets = evaluate, psnr_sets

    def score(self, st, step: int, run_name: str) -> dict:
        res = self.evaluate(self.cfg, st.sampling_nets["G"], self.device, self.cfg.eval.n, run=run_name, step=step)
        return run_row(res, self.psnr_sets)
