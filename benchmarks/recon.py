"""Classical reconstruction baselines for issue 30, side by side: what a recon GAN must beat.

    PYTHONPATH=src .venv/bin/python benchmarks/recon.py --n 128 --held-out 8 \
        --json benchmarks/results/recon-baselines-2026-12-07.json

What is measured (CPU, numpy + scikit-image, `gankit.tasks.recon.baselines`):

1. Data. Random ellipse phantoms made here (`ellipse_phantom`, the recipe in its docstring),
   seeded: `--train` of them (seeds ("train", i)) choose every parameter, `--held-out` others
   (seeds ("test", i)) are scored, and so is the Shepp-Logan phantom (scikit-image's, resized to
   N x N), which no choice looked at.
2. Measurements, made at the reconstruction's own grid (an "inverse crime": the forward model is
   exactly the one the baselines invert, which flatters the iterative ones):
   - CT, parallel beam, scikit-image `radon`, circle=True: 30 and 60 of 180 views, noise-free;
     and a low-dose row at all 180 views with 1e4 photons per ray (counts ~ Poisson(I0 exp(-p mu)),
     clamped >= 1; mu = 0.02/mm on a 256 mm field, i.e. mu_scale = 5.12 / N per pixel unit).
   - MRI: k-space = fft2c(image), noise-free, fastMRI Cartesian masks (random columns; centre
     0.08 at 4x, 0.04 at 8x), the mask seeded per slice.
3. Parameters: a grid search per setting on the training phantoms, best mean PSNR (`search`);
   the grid and each point's score are in the JSON.
4. Scores per slice, then the mean over held-out phantoms: PSNR (data range 1) and SSIM
   (scikit-image), the data-consistency error of the returned image (CT: ||radon(x) - y|| / ||y||;
   MRI: ||M(F x - y)|| / ||M y||, nonzero for the magnitude images: the complex estimates are
   exact, see `zero_filled`), and wall seconds per slice (indicative only: the CPU is shared).

The GAN's rows: `extra_methods` is the hook. It returns {name: reconstruct} for a setting, where
reconstruct(measurement) -> (N, N) float32 image in [0, 1] and a measurement is a `CT` or `MRI`
tuple; `score` treats those rows exactly like the baselines'.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import radon, resize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from gankit import disk  # noqa: E402
from gankit.tasks.recon import baselines as B  # noqa: E402

PHOTONS = 1e4  # low-dose row: photons per ray before the object


class CT(NamedTuple):
    sino: np.ndarray  # float32 (n_detectors, n_angles)
    angles: np.ndarray  # degrees


class MRI(NamedTuple):
    kspace: np.ndarray  # complex64 (N, N), centred
    mask: np.ndarray  # bool (N,), sampled columns


Reconstruct = Callable[[CT | MRI], np.ndarray]


# ---- data ---------------------------------------------------------------------------------

def ellipse_phantom(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random ellipses in the spirit of FBPConvNet's training set: 5 to 15 ellipses, centres
    uniform over the disc of radius 0.5 (coordinates [-1, 1]), semi-axes uniform in [0.05, 0.4],
    orientation uniform, intensity uniform in [0.1, 1]; overlaps add, then the image is divided
    by its maximum. Everything lies within radius 0.9, inside radon's reconstruction circle."""
    c = (np.arange(n) - (n - 1) / 2) / (n / 2)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    img = np.zeros((n, n))
    for _ in range(rng.integers(5, 16)):
        r, t = 0.5 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        cy, cx = r * np.sin(t), r * np.cos(t)
        a, b = rng.uniform(0.05, 0.4, size=2)
        phi = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
        v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1] += rng.uniform(0.1, 1.0)
    return (img / img.max()).astype(np.float32)


def phantoms(split: str, count: int, n: int) -> list[np.ndarray]:
    tag = {"train": 0, "test": 1}[split]
    return [ellipse_phantom(n, np.random.default_rng([tag, i])) for i in range(count)]


def shepp_logan(n: int) -> np.ndarray:
    return np.clip(resize(shepp_logan_phantom(), (n, n), anti_aliasing=True), 0, 1).astype(np.float32)


SETTINGS = {  # name -> (modality, level)
    "ct-30": ("ct", 30), "ct-60": ("ct", 60), "ct-180-lowdose": ("ct", 180),
    "mri-4x": ("mri", 4), "mri-8x": ("mri", 8),
}


def measure(setting: str, img: np.ndarray, seed: int) -> CT | MRI:
    modality, level = SETTINGS[setting]
    n = img.shape[0]
    if modality == "mri":
        return MRI(B.fft2c(img).astype(np.complex64), B.cartesian_mask(n, level, seed=seed))
    angles = B.views(level)
    sino = radon(img.astype(np.float64), theta=angles, circle=True).astype(np.float32)
    if setting.endswith("lowdose"):
        sino = B.low_dose(sino, PHOTONS, mu_scale=5.12 / n, seed=seed)
    return CT(sino, angles)


# ---- methods and their parameter grids ----------------------------------------------------

GRIDS: dict[str, tuple[str, list[dict]]] = {  # method -> (modality, candidate parameters)
    "fbp-ramp": ("ct", [{}]),
    "fbp-hann": ("ct", [{}]),
    "sart": ("ct", [{"iters": k} for k in (1, 3, 10, 20, 50)]),
    "fbp+tv": ("ct", [{"weight": w} for w in (0.003, 0.01, 0.03, 0.1)]),
    "sart-tv": ("ct", [{"weight": w, "iters": k} for w in (0.0003, 0.001, 0.003, 0.01) for k in (10, 30, 60)]),
    "zero-filled": ("mri", [{}]),
    "tv-cs": ("mri", [{"weight": w, "iters": k} for w in (0.001, 0.003, 0.01) for k in (50, 200, 500)]),
}


def method(name: str, p: dict) -> Reconstruct:
    return {
        "fbp-ramp": lambda m: B.fbp(m.sino, m.angles, "ramp"),
        "fbp-hann": lambda m: B.fbp(m.sino, m.angles, "hann"),
        "sart": lambda m: B.sart(m.sino, m.angles, **p),
        "fbp+tv": lambda m: B.tv_ct(m.sino, m.angles, **p),
        "sart-tv": lambda m: B.tv_ct(m.sino, m.angles, **p),
        "zero-filled": lambda m: B.zero_filled(m.kspace, m.mask),
        "tv-cs": lambda m: B.tv_cs(m.kspace, m.mask, **p),
    }[name]


def extra_methods(setting: str) -> dict[str, Reconstruct]:
    """HOOK for the GAN rows: return {"gan": reconstruct} for `setting` once the recon task can
    load a trained run (e.g. a closure over its G applied to FBP / zero-filled input, with the
    MRI data-consistency step). Empty until then, so only the baselines are scored."""
    return {}


# ---- scoring ------------------------------------------------------------------------------

def dc_error(x: np.ndarray, m: CT | MRI) -> float:
    return B.ct_dc_error(x, m.sino, m.angles) if isinstance(m, CT) else B.mri_dc_error(x, m.kspace, m.mask)


def score(reconstruct: Reconstruct, cases: list[tuple[np.ndarray, CT | MRI]]) -> dict:
    """Mean PSNR, SSIM, data-consistency error and seconds per slice of `reconstruct` over
    `cases` ((ground truth, measurement) pairs); any reconstruct(measurement) -> image will do."""
    rows = []
    for gt, m in cases:
        t0 = time.perf_counter()
        x = reconstruct(m)
        secs = time.perf_counter() - t0
        assert x.shape == gt.shape and x.dtype == np.float32, (x.shape, x.dtype)
        rows.append((peak_signal_noise_ratio(gt, x, data_range=1.0),
                     structural_similarity(gt, x, data_range=1.0), dc_error(x, m), secs))
    psnr, ssim, dc, secs = np.mean(rows, axis=0)
    return {"psnr": round(float(psnr), 2), "ssim": round(float(ssim), 4), "dc_error": float(f"{dc:.3g}"),
            "seconds_per_slice": round(float(secs), 3), "slices": len(rows)}


def search(name: str, setting: str, cases) -> tuple[dict, list]:
    """The grid point with the best mean PSNR on the training cases, and every point's PSNR."""
    tried = [(p, score(method(name, p), cases)["psnr"]) for p in GRIDS[name][1]]
    best = max(tried, key=lambda t: t[1])[0]
    return best, [{"params": p, "train_psnr": s} for p, s in tried]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=128, help="image size N (N x N)")
    ap.add_argument("--train", type=int, default=3, help="training phantoms for the parameter search")
    ap.add_argument("--held-out", type=int, default=8, help="held-out phantoms scored")
    ap.add_argument("--only", nargs="*", choices=list(SETTINGS), help="settings to run (default all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    train, test, sl = phantoms("train", args.train, args.n), phantoms("test", args.held_out, args.n), shepp_logan(args.n)
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
           "n": args.n, "photons_low_dose": PHOTONS, "mu_scale": f"5.12/N = {5.12 / args.n:.4g}",
           "note": "seconds_per_slice is indicative only: single process, CPU shared with other jobs",
           "settings": {}}
    for setting in args.only or SETTINGS:
        modality = SETTINGS[setting][0]
        # measurement seeds: 0.. for training slices, 1000.. held out, 9999 Shepp-Logan
        tr = [(g, measure(setting, g, i)) for i, g in enumerate(train)]
        sets = {"ellipses": [(g, measure(setting, g, 1000 + i)) for i, g in enumerate(test)],
                "shepp-logan": [(sl, measure(setting, sl, 9999))]}
        out = res["settings"][setting] = {}
        for name, (mod, _) in GRIDS.items():
            if mod != modality:
                continue
            params, tried = search(name, setting, tr)
            out[name] = {"params": params, "search": tried,
                         **{k: score(method(name, params), cases) for k, cases in sets.items()}}
            print(f"{setting:15s} {name:12s} {json.dumps(params):32s} "
                  + "  ".join(f"{k}: {v['psnr']:6.2f} dB {v['ssim']:.3f} dc {v['dc_error']:.3g} "
                              f"{v['seconds_per_slice']:.2f} s" for k, v in out[name].items() if k in sets),
                  flush=True)
        for name, rec in extra_methods(setting).items():
            out[name] = {k: score(rec, cases) for k, cases in sets.items()}
    if args.json:
        with disk.atomic(args.json) as tmp:
            tmp.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
