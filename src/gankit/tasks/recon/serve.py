"""The reconstruction task's `gankit serve` panel: an uploaded image (a scan slice exported as
PNG), its measurements simulated at the chosen CT views or MRI acceleration, reconstructed.
The answer shows classical reconstruction | gankit | the upload, and its notes the
data-consistency errors and PSNRs. Found by `gankit serve` through the registry
(`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import numpy as np

from gankit.apps.serve.models import Int, Panel, Result, stem
from gankit.errors import GankitError
from gankit.run import Run

MAX_SIDE = 512  # the largest recon.size: radon and FBP cost grows as N^3


def _cells(*images: np.ndarray) -> np.ndarray:
    """(N, N) images in [0, 1] side by side with grey gaps, as uint8 (N, k N + gaps, 1)."""
    n = images[0].shape[0]
    gap = np.full((n, max(2, n // 32)), 0.5, np.float32)
    row = [p for img in images for p in (img, gap)][:-1]
    return np.round(np.clip(np.concatenate(row, 1), 0, 1) * 255).astype(np.uint8)[:, :, None]


def reconstruct_upload(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.recon.infer import estimate, simulated

    img = images["image"]
    h, w = img.shape[:2]
    if h != w or h > MAX_SIDE:
        raise GankitError(f"upload: {w}x{h} px; reconstruction takes a square image of at most {MAX_SIDE}x{MAX_SIDE} "
                          "(crop it to a square first)")
    grey = (img.mean(-1) if img.shape[2] == 3 else img[..., 0]).astype(np.float32) / 255  # (N, N) in [0, 1]
    r = run.config.recon
    spec = f"ct:views={p['views']}" if r.modality == "ct" else f"mri:accel={p['accel']}"
    m, meas, x = simulated(run, grey, spec, "upload")
    est, res = estimate(run, m, meas, x, "upload")
    y = m.classical(meas.to(run.device))
    cells = _cells(y[0, 0].cpu().numpy(), est[0, 0].real.cpu().numpy(), x[0, 0].numpy())
    notes = [f"{res['measure']}; panels: classical | gankit | upload"
             + (" (inside the scanner's circle)" if r.modality == "ct" else ""),
             f"data-consistency error: gankit {res['dc_error']:.3g}, classical {res['dc_error_input']:.3g}",
             f"PSNR against the upload: gankit {res['psnr']:.2f} dB, classical {res['psnr_input']:.2f} dB",
             "an estimate, not for diagnosis"]
    return Result(cells, f"{stem(run)}-{spec.replace(':', '-').replace('=', '')}.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    r = run.config.recon
    field = ({"views": Int(2, 720, r.views, label="CT views")} if r.modality == "ct"
             else {"accel": Int(2, 16, r.accel, label="MRI acceleration")})
    what = "CT views over [0, 180)" if r.modality == "ct" else "MRI acceleration (fastMRI mask, the run's seed)"
    return {"recon": Panel("Reconstruct", "upload a square greyscale image (a scan slice as PNG); its measurements are "
                           f"simulated ({what}) and reconstructed: the classical reconstruction, gankit's, and the "
                           "data-consistency error of each", field, reconstruct_upload, uploads=("image",))}
