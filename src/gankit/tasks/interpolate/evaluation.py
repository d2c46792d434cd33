"""How well a frame-interpolation run does on held-out triplets, beside the two classical
baselines: the average of the two neighbours, and Farneback optical flow warped halfway
(`gankit.metrics.frames`). PSNR and SSIM of each against the true middle frame."""

from __future__ import annotations

import torch

from gankit.data import from_model
from gankit.data.frames import load_triplets
from gankit.errors import GankitError
from gankit.metrics.frames import blend, flow_warp, frame_scores
from gankit.tasks.base import HeldOutEval
from gankit.tasks.interpolate.guide import model_inputs
from gankit.tasks.interpolate.phases import predict
from gankit.util import eval_mode


def held_out(cfg, limit: int | None = None):
    """The source's held-out triplets (a fixed test set for the built-in sources); with `limit`,
    only the first `limit`, decoding only the frames they need (a video folder's test/ split may
    be large)."""
    try:
        return load_triplets(cfg.data.source, "test", cfg.data.resolution, limit=limit)
    except GankitError as e:
        raise GankitError(f"{cfg.data.source}: no held-out split to evaluate on ({e})") from None


@torch.no_grad()
def predict_all(G, prev: torch.Tensor, next_: torch.Tensor, icfg, device="cpu", batch: int = 256) -> torch.Tensor:
    """uint8 (N, C, H, W) middle frames predicted from uint8 neighbours, `icfg` the run's
    `interpolate` config (residual, flow)."""
    out = []
    for p, n in zip(prev.split(batch), next_.split(batch)):
        p, n, warps = model_inputs(p, n, icfg.flow, device)
        out.append(from_model(predict(G, p, n, icfg.residual, warps), "image").cpu())
    return torch.cat(out)


def evaluate_interpolation(cfg, G, device="cpu", n: int = 10_000, baselines: bool = True,
                           run: str | None = None, step: int | None = None) -> dict:
    test = held_out(cfg, limit=n)
    prev, mid, nxt = test.prev[:n], test.mid[:n], test.next[:n]
    with eval_mode(G):
        res = {"gankit": frame_scores(predict_all(G, prev, nxt, cfg.interpolate, device), mid)}
    if baselines:
        res["blend"] = frame_scores(blend(prev, nxt), mid)
        res["flow warp"] = frame_scores(flow_warp(prev, nxt), mid)
    res["protocol"] = {"metric": "PSNR (peak 255, all channels) and SSIM per frame, then mean",
                       "guide": "Farneback halfway warps" if cfg.interpolate.flow else "none",
                       "n": len(mid), "ref": f"{cfg.data.source} held-out triplets", "run": run, "step": step}
    return res


class InterpolationEval(HeldOutEval):
    """`eval.every`: PSNR/SSIM of the held-out middle frames; best by the highest PSNR."""

    key, higher = "psnr", True

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist)
        held_out(cfg, limit=1)  # fail before training, not at the first evaluation

    def score(self, st, step: int, run_name: str) -> dict:
        r = evaluate_interpolation(self.cfg, st.sampling_nets["G"], self.device, self.cfg.eval.n, baselines=False,
                                   run=run_name, step=step)
        return {"psnr": r["gankit"]["psnr"], "ssim": r["gankit"]["ssim"], "protocol": r["protocol"]}
