"""How well a super-resolution run does on held-out images, beside bicubic and nearest-neighbour
upscaling of the same LR input (the SR literature's protocol, `gankit.metrics.sr`): PSNR and SSIM
on the Y channel after shaving `scale` pixels from each border, per image then the mean. Each
held-out image is downscaled by the documented operator, upscaled by the run (tiled, so any size
fits in bounded memory) and by the baselines. On MNIST also the feature network's label accuracy
and FID of the upscaled digits against the real ones.
"""

from __future__ import annotations

import torch

from gankit.data import from_model, to_model
from gankit.data.superres import downscale, load_sr, modcrop
from gankit.errors import GankitError
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.sr import sr_scores, upscale
from gankit.metrics.translation import domain_fid, label_accuracy
from gankit.tasks.base import HeldOutEval
from gankit.tiling import tiled
from gankit.util import eval_mode

TILE, OVERLAP = 128, 16  # LR pixels per tile and of context around it


def held_out(cfg) -> list[torch.Tensor]:
    """The held-out HR images of the run's source, each (C, H, W) uint8 (whole, up to 256 px)."""
    s = cfg.superres
    source = cfg.data.source.split(":")[0] if cfg.data.source.split(":")[0] in ("mnist", "photos") else cfg.data.source
    test = load_sr(source, s.scale, s.patch, "test")
    return list(test.hr) if not isinstance(test.hr, list) else test.hr


@torch.no_grad()
def upscale_with(G, lr: torch.Tensor, scale: int, device="cpu", tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """uint8 (N, C, h, w) LR -> uint8 (N, C, s*h, s*w) through G, tile by tile."""
    out = []
    for part in lr.split(64):
        x = to_model(part.to(device), "image")
        out.append(from_model(tiled(G, x, tile, overlap, scale), "image").cpu())
    return torch.cat(out)


def _mean(rows: list[dict]) -> dict:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def evaluate_superres(cfg, G, device="cpu", source: str | None = None, n: int = 10_000, featurenet=None,
                      run: str | None = None, step: int | None = None) -> dict:
    """{method: {psnr_y, ssim_y, ...}} for gankit, bicubic and nearest on `source`'s held-out split."""
    s = cfg.superres.scale
    source = source or cfg.data.source
    base = source.split(":")[0]
    with eval_mode(G):
        if base == "mnist":  # whole digits, batched
            test = load_sr(f"{base}:test", s, 28, "test")
            hr, y = modcrop(test.hr[:n], s), None if test.y is None else test.y[:n]
            lr = downscale(hr, s)
            outs = {"gankit": upscale_with(G, lr, s, device), "bicubic": upscale(lr, s, "bicubic"),
                    "nearest": upscale(lr, s, "nearest")}
            res = {k: sr_scores(v, hr, s) for k, v in outs.items()}
            ev = Evaluator(featurenet, device)
            for k, v in outs.items():
                if y is not None:
                    res[k]["label_acc"] = label_accuracy(v, y, ev)
                res[k]["fid"] = domain_fid(v, hr, ev)
            count = len(hr)
        else:  # whole photos, one at a time (sizes differ)
            try:
                images = held_out(cfg.replace(**{"data.source": source}))
            except GankitError as e:
                raise GankitError(f"{source}: no held-out images to evaluate on ({e})") from None
            rows = {"gankit": [], "bicubic": [], "nearest": []}
            for hr in images[:n]:
                hr = modcrop(hr[None], s)
                lr = downscale(hr, s)
                for k, v in (("gankit", upscale_with(G, lr, s, device)), ("bicubic", upscale(lr, s, "bicubic")),
                             ("nearest", upscale(lr, s, "nearest"))):
                    rows[k].append(sr_scores(v, hr, s))
            res = {k: _mean(v) for k, v in rows.items()}
            count = len(rows["gankit"])
    res["protocol"] = {"metric": f"PSNR/SSIM on Y (BT.601), {s}-pixel border shaved, per image then mean",
                       "lr": f"x{s} downscale by gankit.metrics.sr.downscale", "n": count,
                       "ref": f"{base} held-out split", "run": run, "step": step}
    return res


class SREval(HeldOutEval):
    """`eval.every` for super-resolution runs: PSNR_Y / SSIM_Y of gankit and PSNR_Y of bicubic;
    best by the highest PSNR_Y."""

    key, higher = "psnr_y", True

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist)
        held_out(cfg)  # fail before training, not at the first evaluation

    def score(self, st, step: int, run_name: str) -> dict:
        r = evaluate_superres(self.cfg, st.sampling_nets["G"], self.device, n=self.cfg.eval.n,
                              featurenet=self.cfg.eval.featurenet, run=run_name, step=step)
        return {"psnr_y": r["gankit"]["psnr_y"], "ssim_y": r["gankit"]["ssim_y"],
                "psnr_y_bicubic": r["bicubic"]["psnr_y"], "protocol": r["protocol"]}
