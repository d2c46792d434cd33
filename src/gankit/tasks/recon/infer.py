"""Using a reconstruction run on a user's measurements, or on an image whose measurements it
simulates:

    recon_path(run, "sino.npy", "out.png")                          a CT sinogram (N, A), float
    recon_path(run, "kspace.npy", "out.npy", mask="mask.npy")       MRI k-space (N, N), complex, and its
                                                                    sampled columns: bool (N,)
    recon_path(run, "slice.png", "out.png", simulate="ct:views=30")  simulate, reconstruct, score
    recon_path(run, "ct/", "ct-30/", simulate="ct:views=30")          each slice of a DICOM series (or a
                                                                    NIfTI volume) the same, written back

A sinogram's angles are `views` (or the run's recon.views) spread over [0, 180); a count that
differs from the sinogram's columns is refused. Every output is written whole or not at all: a
PNG (the estimate's real part, clipped to [0, 1], 8 bits) or a .npy (float32; complex64 for a
data-consistent MRI estimate, whose k-space equals the measurement on the mask). The
data-consistency error of the estimate (and of the classical input) comes with every output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit import disk
from gankit.errors import GankitError, warn
from gankit.media.images import IMAGE_SUFFIXES, read_image, write_image
from gankit.media.scans import ScanOptions, apply_to_scan, is_scan_input
from gankit.tasks.recon import physics
from gankit.tasks.recon.evaluation import reconstruct
from gankit.tasks.recon.measure import Measure

SIMULATE_FORMS = "ct:views=V[,photons=P] or mri:accel=A"


def parse_simulate(spec: str) -> tuple[str, dict]:
    """'ct:views=30' / 'ct:views=60,photons=1e4' / 'mri:accel=8' -> (modality, settings)."""
    modality, _, rest = spec.partition(":")
    keys = {"ct": {"views": int, "photons": float}, "mri": {"accel": int}}.get(modality)
    if keys is None:
        raise GankitError(f"--simulate {spec!r}: expected {SIMULATE_FORMS}")
    out = {}
    for part in filter(None, rest.split(",")):
        k, _, v = part.partition("=")
        try:
            out[k] = keys[k](v)
        except (KeyError, ValueError):
            raise GankitError(f"--simulate {spec!r}: {part!r} is not understood; expected {SIMULATE_FORMS}") from None
    if ("views" in out and not 2 <= out["views"] <= 720) or ("accel" in out and not 2 <= out["accel"] <= 16) \
            or out.get("photons", 1) <= 0:
        raise GankitError(f"--simulate {spec!r}: views 2 to 720, accel 2 to 16, photons > 0")
    return modality, out


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise GankitError(f"{path}: no such {what} file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GankitError(f"{path}: not a readable .npy array ({e})") from None


def simulated(run, img: np.ndarray, simulate: str | None, where: str):
    """(Measure, measurements (1, ...), true image (1, 1, N, N)) simulated from an image (N, N) in [0, 1]."""
    r = run.config.recon
    if simulate is None:
        raise GankitError(f"{where}: an image is not a measurement; add --simulate {SIMULATE_FORMS} to simulate "
                          "its measurements, or give a sinogram / k-space .npy")
    modality, opts = parse_simulate(simulate)
    if modality != r.modality:
        raise GankitError(f"--simulate {simulate!r}: this run reconstructs {r.modality.upper()}, not "
                          f"{modality.upper()}")
    if img.shape[0] != img.shape[1]:
        raise GankitError(f"{where}: {img.shape[1]}x{img.shape[0]} px; reconstruction needs a square image: crop it "
                          f"to {min(img.shape)}x{min(img.shape)} (or pad it) first")
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    if modality == "ct":
        x = x * physics.circle_mask(x.shape[-1])  # a scanner sees the inscribed circle only
        m = Measure("ct", tuple(physics.ct_angles(opts.get("views", r.views))), opts.get("photons", r.photons),
                    r.filter)
    else:
        m = Measure.of(r, n=x.shape[-1], accel=opts.get("accel"))
    gen = torch.Generator().manual_seed(run.config.seed)
    return m, m.measure(x, gen), x


def _measurements(run, src: Path, simulate: str | None, views: int | None, mask: str | None):
    """(Measure, measurements (1, ...), true image (1, 1, N, N) or None) for one input."""
    r = run.config.recon
    if src.suffix.lower() in IMAGE_SUFFIXES:
        img = read_image(src)
        grey = img.mean(-1) if img.shape[2] == 3 else img[..., 0]  # (N, N)
        return simulated(run, grey.astype(np.float32) / 255.0, simulate, str(src))
    if src.suffix.lower() != ".npy":
        raise GankitError(f"{src}: expected an image ({', '.join(IMAGE_SUFFIXES)}) or a scan (DICOM file or series "
                          "folder, .nii/.nii.gz) with --simulate, or a .npy sinogram (CT) or k-space (MRI)")
    a = _load_npy(src, "measurement")
    if r.modality == "ct":
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
            raise GankitError(f"{src}: a {a.dtype} array of shape {a.shape}; a CT sinogram is a real float "
                              "array (n_detectors, n_angles)")
        v = views or r.views
        if a.shape[1] != v:
            raise GankitError(f"{src}: the sinogram has {a.shape[1]} angles but {'--views' if views else 'recon.views'}"
                              f" is {v}; pass --views {a.shape[1]} if it was measured at {a.shape[1]} angles over "
                              "[0, 180)")
        return Measure("ct", tuple(physics.ct_angles(v)), None, r.filter), torch.from_numpy(a.astype(np.float32))[None], None
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.iscomplexobj(a):
        raise GankitError(f"{src}: a {a.dtype} array of shape {a.shape}; MRI k-space is complex (N, N), "
                          "centred (fft2c), phase encodes along the columns")
    if mask is None:
        raise GankitError(f"{src}: k-space needs its sampling mask: --mask MASK.npy (bool, one per column)")
    mk = _load_npy(Path(mask), "mask")
    if mk.dtype != bool or mk.shape not in ((a.shape[1],), a.shape) or (mk.ndim == 2 and (mk != mk[:1]).any()):
        raise GankitError(f"{mask}: a {mk.dtype} array of shape {mk.shape}; expected bool ({a.shape[1]},), one per "
                          f"k-space column (or ({a.shape[0]}, {a.shape[1]}) with equal rows)")
    cols = mk if mk.ndim == 1 else mk[0]
    k = torch.from_numpy(a.astype(np.complex64))[None, None] * torch.from_numpy(cols)
    return Measure("mri", mask=tuple(cols.tolist())), k, None


def estimate(run, m: Measure, meas: torch.Tensor, x: torch.Tensor | None, where: str):
    """(G's estimate (1, 1, N, N), real or complex, and its scores) from one input's measurements."""
    meas = meas.to(run.device)
    y = m.classical(meas)
    try:
        est = reconstruct(run.nets["G"], y, meas, m, run.config.recon)
    except GankitError as e:  # the U-Net's padding refuses images too small for its depth
        raise GankitError(f"{where}: {e}") from None
    res = {"measure": m.describe(), "dc_error": float(m.error(est, meas)[0]),
           "dc_error_input": float(m.error(y, meas)[0])}
    if x is not None:
        from gankit.tasks.recon.evaluation import scores

        x = x.to(run.device)
        res["psnr"], res["psnr_input"] = scores(est, x, meas, m)["psnr"], scores(y, x, meas, m)["psnr"]
    return est, res


def recon_scan(run, src: Path, out: Path, simulate: str | None, scan: ScanOptions | None, overwrite: bool,
               log: Callable[[str], None]) -> dict:
    """Each slice of a scan (windowed to [0, 1]) simulated with --simulate and reconstructed; written
    back as the scan's format or PNGs (`gankit.media.scans`); the per-slice scores averaged."""
    if simulate is None:
        raise GankitError(f"{src}: a scan is images, not measurements; add --simulate {SIMULATE_FORMS} to simulate "
                          "each slice's measurements")
    parse_simulate(simulate)  # before the scan is read
    rows = []

    def one(img: np.ndarray, where: str) -> np.ndarray:
        m, meas, x = simulated(run, img, simulate, where)
        est, res = estimate(run, m, meas, x, where)
        rows.append(res)
        return est[0, 0].real.clamp(0, 1).cpu().numpy()  # float: written back without an 8-bit step

    done = apply_to_scan(one, src, out, scan, overwrite, log)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("dc_error", "dc_error_input", "psnr", "psnr_input")}
    return {**done, **mean, "measure": rows[0]["measure"], "per_slice": rows}


def recon_path(run, src: str | Path, out: str | Path, simulate: str | None = None, views: int | None = None,
               mask: str | None = None, overwrite: bool = False, scan: ScanOptions | None = None,
               log: Callable[[str], None] = warn) -> dict:
    """Reconstruct one input (see the module docstring) into `out` (.png or .npy; a scan: as
    `gankit.media.scans` writes it); returns what was done, with the data-consistency errors and,
    for --simulate, the PSNRs against the image (a scan: their means over its slices)."""
    run.need("recon", "reconstruction")
    src, out = Path(src), Path(out)
    if is_scan_input(src):
        return recon_scan(run, src, out, simulate, scan, overwrite, log)
    if out.suffix.lower() not in (".png", ".npy"):
        raise GankitError(f"{out}: write the reconstruction as .png (8 bits) or .npy (float)")
    if out.exists() and not overwrite:
        raise GankitError(f"{out}: already exists; pass --overwrite to replace it")
    m, meas, x = _measurements(run, src, simulate, views, mask)
    est, res = estimate(run, m, meas, x, str(src))
    res = {"kind": "image", "n": 1, "out": str(out), **res}
    img = est[0, 0].cpu()
    if out.suffix.lower() == ".npy":
        arr = img.numpy().astype(np.complex64 if img.is_complex() else np.float32)
        with disk.atomic(out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr)
    else:
        write_image((img.real.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), out)
    return res
