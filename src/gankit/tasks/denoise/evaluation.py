"""How well a denoising run restores held-out images, beside the classical denoisers.

Per noise level (`denoise.eval_noise`, or the training noise; a range is scored at its two ends and
its middle), the first n held-out images (`gankit.data.inpaint`: mnist:test, photos:test, a
folder's test/) are corrupted once with the fixed seed `EVAL_SEED` (the same noisy bytes for every
method and every run), and each method restores them:

- noisy: the input itself (what doing nothing scores);
- nlm: scikit-image's non-local means (Buades et al. 2005; 5x5 patches, 13x13 search window,
  h = 0.8 sigma, sigma's noise bias removed);
- tv: scikit-image's total-variation denoising (Chambolle 2004), weight 0.5 sigma (the best of
  0.5, 1 and 2 sigma on 200 MNIST training digits at sigma 15, 25 and 50; 0-1 scale);
- gankit: the run's G.

Both baselines are given the noise's true std for Gaussian noise (an oracle: their best case); for
Poisson noise, whose std depends on the pixel, they estimate it per image (`estimate_sigma`).
Scores: L1, PSNR and SSIM against the clean images (`gankit.metrics.translation.paired_scores`)
and, on MNIST or with a feature network given, the network's label accuracy on the restored
digits (is the digit still legible?).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma

from gankit.data import from_model, to_model
from gankit.data.inpaint import load_held_out
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.translation import PAIRED_PROTOCOL, label_accuracy, paired_scores
from gankit.tasks.denoise.noise import Noise, corrupt, parse_noise
from gankit.tasks.denoise.phases import restore
from gankit.tasks.restore_common import RestoreEval
from gankit.util import eval_mode

EVAL_SEED = 2025


def held_out(cfg):
    """The run's source's held-out images (`gankit.data.inpaint.load_held_out`)."""
    return load_held_out(cfg.data.source, cfg.denoise.patch)


def eval_levels(cfg) -> list[Noise]:
    specs = cfg.denoise.eval_noise or (cfg.denoise.noise,)
    return [level for spec in specs for level in parse_noise(spec).levels()]


def noisy_copy(x: torch.Tensor, level: Noise, seed: int = EVAL_SEED) -> torch.Tensor:
    """x corrupted by `level`, the same bytes for every call with the same arguments."""
    return corrupt(x, level, torch.Generator(device=x.device).manual_seed(seed))


@torch.no_grad()
def denoise_all(G, y: torch.Tensor, residual: bool, device="cpu", batch: int = 256) -> torch.Tensor:
    """uint8 (N, C, H, W) noisy images -> uint8 restorations by G (in its current mode)."""
    out = [from_model(restore(G, to_model(part.to(device), "image"), residual), "image").cpu()
           for part in y.split(batch)]
    return torch.cat(out)


def _classical(y: torch.Tensor, level: Noise, method: str) -> torch.Tensor:
    """A scikit-image denoiser over uint8 images, one image at a time, in [0, 1] floats."""
    out = np.empty(tuple(y.shape), dtype=np.uint8)
    grey = y.shape[1] == 1
    axis = None if grey else -1  # a grey image as 2-D: scikit-image's 1-channel path misreads h (measured)
    for i, img in enumerate(y.numpy()):
        im = (img[0] if grey else np.moveaxis(img, 0, -1)).astype(np.float64) / 255.0  # (H, W[, C]) in [0, 1]
        sigma = level.lo / 255.0 if level.kind == "gaussian" else float(estimate_sigma(im, channel_axis=axis,
                                                                                        average_sigmas=True))
        if method == "nlm":
            r = denoise_nl_means(im, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True,
                                 channel_axis=axis)
        else:
            r = denoise_tv_chambolle(im, weight=0.5 * sigma, channel_axis=axis)
        r = np.clip(np.round(r * 255.0), 0, 255)
        out[i] = r[None] if grey else np.moveaxis(r, -1, 0)
    return torch.from_numpy(out)


BASELINES = ("nlm", "tv")


def evaluate_denoise(cfg, G, device="cpu", n: int = 10_000, featurenet=None, baselines: bool = True,
                     run: str | None = None, step: int | None = None) -> dict:
    """{noise level: {method: scores}} on the held-out images, plus "protocol"."""
    test = held_out(cfg)
    x = test.x[:n]
    y_true = None if test.y is None else test.y[:n]
    features = featurenet is not None or cfg.data.source.split(":")[0] == "mnist"
    ev = Evaluator(featurenet, device) if features else None
    with eval_mode(G):
        res = {}
        for level in eval_levels(cfg):
            noisy = noisy_copy(x, level)
            outs = {"gankit": denoise_all(G, noisy, cfg.denoise.residual, device)}
            if baselines:
                outs = {"noisy": noisy, **{m: _classical(noisy, level, m) for m in BASELINES}, **outs}
            res[str(level)] = {}
            for name, out in outs.items():
                r = paired_scores(out, x)
                if ev is not None and y_true is not None:
                    r["label_acc"] = label_accuracy(out, y_true, ev)
                res[str(level)][name] = r
    res["protocol"] = {"metric": PAIRED_PROTOCOL, "n": len(x), "ref": f"{test.name} (held out)",
                       "noise": f"{', '.join(map(str, eval_levels(cfg)))}; uint8 (rounded, clipped); seed {EVAL_SEED}",
                       "baselines": "nlm: skimage denoise_nl_means (5x5, 13x13, h 0.8 sigma); tv: skimage "
                                    "denoise_tv_chambolle (weight 0.5 sigma); both given the true sigma for Gaussian "
                                    "noise, estimate_sigma for Poisson",
                       "feature_net": None if ev is None else ev.net_name,
                       "feature_net_sha256": None if ev is None else ev.meta["sha256"],
                       "run": run, "step": step}
    return res


class DenoiseEval(RestoreEval):
    """`eval.every`: PSNR averaged over the evaluation noise levels; best by the highest."""

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist, partial(evaluate_denoise, baselines=False), held_out)
