"""How well a reconstruction run recovers held-out images, beside the classical reconstruction it
starts from.

Two held-out sets: the training source's (phantoms:test, or a folder's test/) and scikit-image's
Shepp-Logan phantom, which no source trains on. Each image's measurements are simulated once with
the run's measurement model (`measure.Measure`) and the fixed seed `EVAL_SEED` (the same noisy
sinograms for every run), then reconstructed by:

- input: the classical reconstruction (FBP for CT, the zero-filled inverse FFT for MRI);
- gankit: the run's G on it (MRI: then the data-consistency step when recon.data_consistency).

Scores per method: PSNR and SSIM against the true image (images clipped to [0, 1], data range 1,
torchmetrics' SSIM defaults: Gaussian 11, sigma 1.5; the mean over images), and the
data-consistency error (`Measure.error`: |A x - m| / |m|, the re-projected or re-sampled estimate
against the measurements; MRI's is taken on the complex data-consistent image, ~1e-7 in float32).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from gankit.data.phantoms import load_recon, load_recon_held_out
from gankit.tasks.recon.measure import Measure
from gankit.tasks.recon.phases import refine
from gankit.tasks.restore_common import RestoreEval
from gankit.util import eval_mode

EVAL_SEED = 2025
PROTOCOL = ("images clipped to [0, 1]; PSNR per image (data range 1) then mean; SSIM torchmetrics defaults "
            "(Gaussian 11, sigma 1.5), mean over images; dc_error = |A x - m| / |m| per image, mean")


def held_out_sets(cfg) -> dict:
    """{name: ReconData}: the source's held-out images and the Shepp-Logan phantom."""
    r, cut = cfg.recon, cfg.recon.modality == "ct"
    sets = {"held_out": load_recon_held_out(cfg.data.source, r.size, cut)}
    if cfg.data.source != "shepp-logan":
        sets["shepp_logan"] = load_recon("shepp-logan", "test", r.size)
    return sets


def measured(m: Measure, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The measurements of x with the fixed evaluation seed, and their classical reconstruction."""
    meas = m.measure(x, torch.Generator(device=x.device).manual_seed(EVAL_SEED))
    return meas, m.classical(meas)


@torch.no_grad()
def reconstruct(G, y: torch.Tensor, meas: torch.Tensor, m: Measure, r, batch: int = 64) -> torch.Tensor:
    """G's reconstructions in [0, 1] of classical reconstructions y (B, 1, N, N), data-consistent
    (complex) for MRI with recon.data_consistency, real otherwise. A cascade G is given the
    measurements and `m` itself, and its MRI output is already data-consistent."""
    outs = []
    for yb, mb in zip(y.split(batch), meas.split(batch)):
        if r.g_arch == "cascade":
            outs.append(G(yb, mb, m))
            continue
        out = (refine(G, yb * 2 - 1, r.residual) + 1) * 0.5
        outs.append(m.consistent(out, mb) if m.modality == "mri" and r.data_consistency else out)
    return torch.cat(outs)


def scores(est: torch.Tensor, x: torch.Tensor, meas: torch.Tensor, m: Measure) -> dict:
    """PSNR, SSIM (of the real part, clipped) and the data-consistency error of estimates."""
    p = (est.real if est.is_complex() else est).float().clamp(0, 1)
    t = x.float()
    return {"psnr": float(peak_signal_noise_ratio(p, t, data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean")),
            "ssim": float(structural_similarity_index_measure(p, t, data_range=1.0)),
            "dc_error": float(m.error(est, meas).mean())}


def evaluate_recon(cfg, G, device="cpu", n: int = 10_000, run: str | None = None, step: int | None = None) -> dict:
    """{set: {method: scores}} on the held-out images, plus "protocol"."""
    r = cfg.recon
    m = Measure.of(r)
    with eval_mode(G):
        res = {}
        for name, data in held_out_sets(cfg).items():
            x = data.x[:n].to(device)
            meas, y = measured(m, x)
            res[name] = {"input": scores(y, x, meas, m), "gankit": scores(reconstruct(G, y, meas, m, r), x, meas, m),
                         "n": len(x), "source": data.name}
    res["protocol"] = {"metric": PROTOCOL, "measurements": f"{m.describe()}; seed {EVAL_SEED}",
                       "input": "FBP" if m.modality == "ct" else "zero-filled inverse FFT",
                       "data_consistency": bool(m.modality == "mri" and r.data_consistency), "run": run, "step": step}
    return res


class ReconEval(RestoreEval):
    """`eval.every`: PSNR on the held-out set; best by the highest."""

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist, evaluate_recon, held_out_sets, ("held_out",))
