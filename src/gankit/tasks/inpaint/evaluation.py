"""How well an inpainting run repairs held-out images, beside the classical baselines
(`gankit.metrics.inpaint`: OpenCV's Telea and Navier-Stokes, scikit-image's biharmonic, mean fill).

Per hole kind of `EVAL_MASKS` (boxes of 25% and 50% of the area, free-form strokes), the first n
held-out images each get one hole, drawn with the fixed seed `EVAL_SEED` (the same holes for
every method and every run), and each method completes them. Scores: PSNR, SSIM and L1 in the
hole (`hole_scores`); on MNIST, or with a feature network given, also the feature network's label
accuracy on the repaired digits (does the digit survive?) and the FID of the repaired images
against the same images undamaged.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from gankit.data import from_model, to_model
from gankit.data.inpaint import load_held_out
from gankit.data.masks import parse_mask_kind
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.inpaint import BASELINES, INPAINT_PROTOCOL, hole_scores
from gankit.metrics.translation import domain_fid, label_accuracy
from gankit.tasks.inpaint.phases import fill
from gankit.tasks.restore_common import RestoreEval
from gankit.util import eval_mode

EVAL_MASKS = ("box:0.25", "box:0.5", "stroke")
EVAL_SEED = 2024


def held_out(cfg):
    """The run's source's held-out images (`gankit.data.inpaint.load_held_out`)."""
    return load_held_out(cfg.data.source, cfg.inpaint.patch)


def fixed_masks(kind: str, n: int, h: int, w: int, seed: int = EVAL_SEED) -> torch.Tensor:
    """n holes of `kind`, the same for every call with the same arguments: bool (n, 1, h, w)."""
    return parse_mask_kind(kind).sample(n, h, w, np.random.default_rng(seed))


@torch.no_grad()
def complete(G, x: torch.Tensor, masks: torch.Tensor, device="cpu", batch: int = 256) -> torch.Tensor:
    """uint8 (N, C, H, W) images repaired by G where `masks` (bool (N, 1, H, W)) is True; every
    known pixel is the input's own byte (the composite is taken again in uint8)."""
    out = []
    for xb, mb in zip(x.split(batch), masks.split(batch)):
        xb, mb = xb.to(device), mb.to(device)
        raw, _ = fill(G, to_model(xb, "image"), mb)
        out.append(torch.where(mb, from_model(raw, "image"), xb).cpu())
    return torch.cat(out)


def damaged_view(x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """uint8 images with their holes painted white, for pictures."""
    return torch.where(masks.to(x.device), torch.full_like(x, 255), x)


def evaluate_inpaint(cfg, G, device="cpu", n: int = 10_000, featurenet=None, baselines: bool = True,
                     run: str | None = None, step: int | None = None) -> dict:
    """{mask kind: {method: scores}} on the held-out images, plus "protocol"."""
    test = held_out(cfg)
    x = test.x[:n]
    y = None if test.y is None else test.y[:n]
    _, h, w = x.shape[1:]
    features = featurenet is not None or cfg.data.source.split(":")[0] == "mnist"
    ev = Evaluator(featurenet, device) if features else None
    with eval_mode(G):
        res = {}
        for kind in EVAL_MASKS:
            masks = fixed_masks(kind, len(x), h, w)
            outs = {"gankit": complete(G, x, masks, device)}
            if baselines:
                damaged = torch.where(masks, torch.zeros_like(x), x)  # the hole's content never reaches a baseline
                outs.update({name: f(damaged, masks) for name, f in BASELINES.items()})
            res[kind] = {}
            for name, out in outs.items():
                r = hole_scores(out, x, masks)
                if ev is not None:
                    if y is not None:
                        r["label_acc"] = label_accuracy(out, y, ev)
                    r["fid"] = domain_fid(out, x, ev)
                res[kind][name] = r
            res[kind]["area"] = float(masks.float().mean())
    res["protocol"] = {"metric": INPAINT_PROTOCOL, "n": len(x), "ref": f"{test.name} (held out)",
                       "masks": f"{', '.join(EVAL_MASKS)}; one per image, seed {EVAL_SEED}",
                       "feature_net": None if ev is None else ev.net_name,
                       "feature_net_sha256": None if ev is None else ev.meta["sha256"],
                       "fid": None if ev is None else "repaired vs the same images undamaged",
                       "run": run, "step": step}
    return res


class InpaintEval(RestoreEval):
    """`eval.every`: PSNR in the hole, averaged over the hole kinds; best by the highest."""

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist, partial(evaluate_inpaint, baselines=False), held_out)
