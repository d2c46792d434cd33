"""Reconstruction from incomplete measurements (issue 30): the classical baselines and trained recon
GANs scored side by side on the same phantoms and the same measurements.

    PYTHONPATH=src .venv/bin/python benchmarks/recon.py --n 64 --train 4 --held-out 20 \
        --run-ct runs/ct30-p1e5 --run-mri runs/mri4-n01 --json benchmarks/results/recon-DATE.json

What is measured:

1. Images. `gankit.data.phantoms`' random ellipse phantoms (the recipe in its docstring; the one
   the recon task trains on): the first `--train` of the training split choose every baseline
   parameter, the first `--held-out` of the test split (phantoms:test) are scored, and so is the
   Shepp-Logan phantom, which nothing trains or tunes on. At `--n` px, the GAN's size.
2. Measurements, simulated once per image and setting with the recon task's own forward model
   (`gankit.tasks.recon.measure.Measure`, torch, float32; seeds 0.. for training images, 1000..
   held out, 9999 Shepp-Logan), and every method, GAN included, is given the same arrays:
   - CT, parallel beam (skimage's geometry): 30 and 60 of 180 views, noise-free and with Poisson
     counts at `--photons` per ray (mu = 2 / N per pixel unit: a ray through N pixels of 1 keeps
     e^-2); the low-dose row: 180 views at `--low-dose` photons per ray.
   - MRI: k-space = fft2c(image) on fastMRI's Cartesian mask (random columns, centre 0.32 / accel,
     seed 0: the one mask a recon run trains with), at 4x and 8x, noise-free and with complex
     Gaussian noise on the sampled columns, E|n|^2 = `--mri-noise`^2 (in image units: the FFT is
     orthonormal).
   Both grids are the reconstruction's own (an inverse crime: it flatters the model-based
   baselines, TV most); the noisy rows are the honest protocol, the noise-free ones TV's best case.
3. Baseline parameters: a grid search per setting on the training images, best mean PSNR
   (`search`); the grid and each point's score are in the JSON.
4. GAN rows: each `--run-ct` / `--run-mri` run (loaded with `gankit.load`) is scored on every
   setting of its modality whose level (views / acceleration) and size match its config, its
   FBP / zero-filled input made from the same measurement (its noise level may differ from the
   run's training noise: the JSON records both).
5. Scores per slice, then the mean: PSNR (data range 1) and SSIM (scikit-image, 7x7) of the image
   in [0, 1] (MRI: the real part of a complex estimate, as the GAN's; `zero-filled` is the usual
   magnitude image beside it); the data-consistency error of that image (CT: ||radon(x) - y|| / ||y||; MRI:
   ||M(F x - y)|| / ||M y||), and for a method with a complex estimate (zero-filled, TV-CS, the
   GAN's data-consistency step) that of the complex estimate (`dc_error_complex`: rounding); wall
   seconds per slice, one slice at a time, one thread (re-run alone for speed figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from gankit import disk  # noqa: E402
from gankit.data import phantoms as P  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.tasks.recon import baselines as B  # noqa: E402
from gankit.tasks.recon import physics  # noqa: E402
from gankit.tasks.recon.measure import Measure  # noqa: E402


class CT(NamedTuple):
    sino: np.ndarray  # float32 (n_detectors, n_angles)
    angles: np.ndarray  # degrees


class MRI(NamedTuple):
    kspace: np.ndarray  # complex64 (N, N), centred, zero off the mask
    mask: np.ndarray  # bool (N,), sampled columns


# reconstruct(measurement) -> image float32 (N, N) in [0, 1], or (image, complex estimate)
Reconstruct = Callable[[CT | MRI], np.ndarray | tuple[np.ndarray, np.ndarray]]


class Setting(NamedTuple):
    modality: str  # "ct" | "mri"
    level: int  # views | acceleration
    noise: str  # "none" | "protocol" | "low-dose": which of the command's noise levels


SETTINGS = {
    "ct-30": Setting("ct", 30, "none"), "ct-30-noisy": Setting("ct", 30, "protocol"),
    "ct-60": Setting("ct", 60, "none"), "ct-60-noisy": Setting("ct", 60, "protocol"),
    "ct-180-lowdose": Setting("ct", 180, "low-dose"),
    "mri-4x": Setting("mri", 4, "none"), "mri-4x-noisy": Setting("mri", 4, "protocol"),
    "mri-8x": Setting("mri", 8, "none"), "mri-8x-noisy": Setting("mri", 8, "protocol"),
}


def measure_model(s: Setting, n: int, args) -> Measure:
    """The task's measurement model for setting `s` at side n with the command's noise levels."""
    if s.modality == "ct":
        photons = {"none": None, "protocol": args.photons, "low-dose": args.low_dose}[s.noise]
        return Measure("ct", tuple(physics.ct_angles(s.level)), photons)
    mask = physics.cartesian_mask(n, s.level, physics.center_fraction_for(s.level), "random", seed=0)
    return Measure("mri", mask=tuple(mask.tolist()), noise=args.mri_noise if s.noise == "protocol" else None)


def simulate(m: Measure, img: np.ndarray, seed: int) -> CT | MRI:
    """One image's measurement, as the arrays every method receives."""
    meas = m.measure(torch.from_numpy(img)[None, None], torch.Generator().manual_seed(seed))
    if m.modality == "ct":
        return CT(meas[0].numpy(), np.asarray(m.angles))
    return MRI(meas[0, 0].numpy(), np.asarray(m.mask))


# ---- methods and their parameter grids ----------------------------------------------------

GRIDS: dict[str, tuple[str, list[dict]]] = {  # method -> (modality, candidate parameters)
    "fbp-ramp": ("ct", [{}]),
    "fbp-hann": ("ct", [{}]),
    "sart": ("ct", [{"iters": k} for k in (1, 3, 10, 20, 50)]),
    "fbp+tv": ("ct", [{"weight": w} for w in (0.003, 0.01, 0.03, 0.1)]),
    "sart-tv": ("ct", [{"weight": w, "iters": k} for w in (0.0003, 0.001, 0.003, 0.01) for k in (10, 30, 60)]),
    "zero-filled": ("mri", [{}]),
    "zero-filled-real": ("mri", [{}]),
    "tv-cs": ("mri", [{"weight": w, "iters": k} for w in (0.001, 0.003, 0.01, 0.03) for k in (50, 200, 500)]),
}


def method(name: str, p: dict) -> Reconstruct:
    return {
        "fbp-ramp": lambda m: B.fbp(m.sino, m.angles, "ramp"),
        "fbp-hann": lambda m: B.fbp(m.sino, m.angles, "hann"),
        "sart": lambda m: B.sart(m.sino, m.angles, **p),
        "fbp+tv": lambda m: B.tv_ct(m.sino, m.angles, **p),
        "sart-tv": lambda m: B.tv_ct(m.sino, m.angles, **p),
        "zero-filled": lambda m: (B.zero_filled(m.kspace, m.mask), B.zero_filled(m.kspace, m.mask, magnitude=False)),
        "zero-filled-real": lambda m: _real(B.zero_filled(m.kspace, m.mask, magnitude=False)),
        "tv-cs": lambda m: _real(B.tv_cs(m.kspace, m.mask, magnitude=False, **p)),
    }[name]


def _real(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image of a complex MRI estimate as the GAN's is taken: the real part (the objects are
    real; the imaginary part is aliasing and noise), clipped to [0, 1]; with the estimate itself."""
    return np.clip(z.real, 0.0, 1.0).astype(np.float32), z


def run_matches(run, s: Setting, n: int) -> bool:
    """Whether a trained run was made for setting s: modality, size, views or acceleration, and
    (MRI) the benchmark's mask rule."""
    r = run.config.recon
    if r.modality != s.modality or r.size != n:
        return False
    if s.modality == "ct":
        return r.views == s.level
    return r.accel == s.level and r.mask == "random" and r.mask_seed == 0 and r.center_fraction is None


def gan_method(run) -> Reconstruct:
    """The run's reconstruction of a benchmark measurement: its classical input (FBP with the run's
    filter, or zero-filled) made from the given arrays, G, then (MRI) the data-consistency step."""
    from gankit.tasks.recon.evaluation import reconstruct

    r, G = run.config.recon, run.nets["G"]

    def rec(m: CT | MRI):
        if isinstance(m, CT):
            meas, mm = torch.from_numpy(m.sino)[None], Measure("ct", tuple(m.angles), None, r.filter)
        else:
            meas, mm = torch.from_numpy(m.kspace)[None, None], Measure("mri", mask=tuple(m.mask.tolist()))
        est = reconstruct(G, mm.classical(meas), meas, mm, r)[0, 0]
        img = est.real.clamp(0, 1).numpy().astype(np.float32)
        return (img, est.numpy()) if est.is_complex() else img

    return rec


# ---- scoring ------------------------------------------------------------------------------

def dc_error(x: np.ndarray, m: CT | MRI) -> float:
    return B.ct_dc_error(x, m.sino, m.angles) if isinstance(m, CT) else B.mri_dc_error(x, m.kspace, m.mask)


def score(reconstruct: Reconstruct, cases: list[tuple[np.ndarray, CT | MRI]]) -> dict:
    """Mean PSNR, SSIM, data-consistency error(s) and seconds per slice of `reconstruct` over
    `cases` ((ground truth, measurement) pairs)."""
    rows, dcz = [], []
    for gt, m in cases:
        t0 = time.perf_counter()
        out = reconstruct(m)
        secs = time.perf_counter() - t0
        x, z = out if isinstance(out, tuple) else (out, None)
        if x.shape != gt.shape or x.dtype != np.float32:
            raise GankitError(f"a reconstruction of {x.dtype} {x.shape}; expected float32 {gt.shape}")
        rows.append((peak_signal_noise_ratio(gt, x, data_range=1.0),
                     structural_similarity(gt, x, data_range=1.0), dc_error(x, m), secs))
        if z is not None:
            dcz.append(dc_error(z, m))
    psnr, ssim, dc, secs = np.mean(rows, axis=0)
    res = {"psnr": round(float(psnr), 2), "ssim": round(float(ssim), 4), "dc_error": float(f"{dc:.3g}"),
           "seconds_per_slice": round(float(secs), 4), "slices": len(rows)}
    if dcz:
        res["dc_error_complex"] = float(f"{np.mean(dcz):.3g}")
    return res


def search(name: str, cases) -> tuple[dict, list]:
    """The grid point with the best mean PSNR on the training cases, and every point's PSNR."""
    tried = [(p, score(method(name, p), cases)["psnr"]) for p in GRIDS[name][1]]
    best = max(tried, key=lambda t: t[1])[0]
    return best, [{"params": p, "train_psnr": s} for p, s in tried]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="image size N (N x N): the GAN's recon.size")
    ap.add_argument("--train", type=int, default=4, help="training phantoms for the parameter search")
    ap.add_argument("--held-out", type=int, default=20, help="held-out phantoms scored (phantoms:test)")
    ap.add_argument("--photons", type=float, default=1e5, help="CT protocol noise: photons per ray")
    ap.add_argument("--low-dose", type=float, default=1e4, help="the 180-view low-dose row's photons per ray")
    ap.add_argument("--mri-noise", type=float, default=0.01, help="MRI protocol noise: complex std per k-space sample")
    ap.add_argument("--run-ct", action="append", default=[], metavar="RUN", help="a trained CT recon run (repeatable)")
    ap.add_argument("--run-mri", action="append", default=[], metavar="RUN", help="a trained MRI recon run (repeatable)")
    ap.add_argument("--only", nargs="*", choices=list(SETTINGS), help="settings to run (default all)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--table", type=Path, metavar="JSON", help="only print a result's markdown table")
    ap.add_argument("--baselines-from", type=Path, metavar="JSON", action="append",
                    help="take the baselines' rows from earlier results of the same protocol (n, counts, noise) "
                         "and score only the runs (repeatable: their settings are merged)")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    torch.set_num_threads(1)

    import gankit

    runs = {}
    for path, modality in [(p, "ct") for p in args.run_ct] + [(p, "mri") for p in args.run_mri]:
        run = gankit.load(path)
        if run.config.task != "recon" or run.config.recon.modality != modality:
            raise GankitError(f"{path}: not a {modality} recon run (task {run.config.task})")
        runs[f"gan:{Path(run.dir).name}"] = run

    n = args.n
    train = P.ellipse_phantoms(args.train, n, P.SEEDS["train"])
    test = P.ellipse_phantoms(args.held_out, n, P.SEEDS["test"])
    sl = P.shepp_logan(n)
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d"), "n": n,
           "phantoms": P.RECIPE, "protocol": {"ct_photons": args.photons, "ct_low_dose_photons": args.low_dose,
                                              "mu_per_pixel_unit": f"2/N = {physics.mu_scale(n):.4g}",
                                              "mri_noise_std": args.mri_noise},
           "runs": {k: {"checkpoint": str(r.checkpoint or r.dir), "steps": r.step,
                        "trained_on": Measure.of(r.config.recon).describe()} for k, r in runs.items()},
           "train": args.train, "held_out": args.held_out,
           "note": "seconds_per_slice is indicative only unless the command ran alone on the machine",
           "settings": {}}
    earlier = None
    if args.baselines_from:
        earlier = {}
        for path in args.baselines_from:
            earlier.update(_earlier(path, res))
    for name in args.only or SETTINGS:
        s = SETTINGS[name]
        m = measure_model(s, n, args)
        tr = [(g, simulate(m, g, i)) for i, g in enumerate(train)]
        sets = {"ellipses": [(g, simulate(m, g, 1000 + i)) for i, g in enumerate(test)],
                "shepp-logan": [(sl, simulate(m, sl, 9999))]}
        out = res["settings"][name] = {"measurement": m.describe()}
        methods = {}
        if earlier is not None:
            if name not in earlier:
                raise GankitError(f"--baselines-from: no setting {name} in {', '.join(map(str, args.baselines_from))}; "
                                  "run it without --baselines-from")
            out.update({k: v for k, v in earlier[name].items() if not k.startswith("gan:")})
        for meth, (mod, _) in GRIDS.items():
            if mod == s.modality and earlier is None:
                params, tried = search(meth, tr)
                methods[meth] = (method(meth, params), {"params": params, "search": tried})
        for key, run in runs.items():
            if run_matches(run, s, n):
                methods[key] = (gan_method(run), {"trained_on": res["runs"][key]["trained_on"]})
        for meth, (rec, info) in methods.items():
            out[meth] = {**info, **{k: score(rec, cases) for k, cases in sets.items()}}
            print(f"{name:15s} {meth:22s} " + "  ".join(
                f"{k}: {v['psnr']:6.2f} dB {v['ssim']:.3f} dc {v['dc_error']:.3g} {v['seconds_per_slice']:.3f} s"
                for k, v in out[meth].items() if k in sets), flush=True)
        if args.json:  # after every setting, so that a stopped run keeps what it measured
            _write(args.json, res)
    print(markdown(res))


def _write(path: Path, res: dict) -> None:
    with disk.atomic(path) as tmp:
        tmp.write_text(json.dumps(res, indent=1) + "\n")


def markdown(res: dict) -> str:
    """One row per setting and method: PSNR / SSIM on the held-out phantoms and Shepp-Logan, the
    data-consistency errors, seconds per slice and the chosen parameters."""
    rows = ["| setting | method | ellipses PSNR / SSIM | Shepp-Logan PSNR / SSIM | DC error (image; complex) "
            "| s / slice | parameters |", "|---|---|---|---|---|---|---|"]
    for name, out in res["settings"].items():
        for meth, v in out.items():
            if not isinstance(v, dict) or "ellipses" not in v:
                continue
            e, sl = v["ellipses"], v["shepp-logan"]
            dc = f"{e['dc_error']:.3g}" + (f"; {e['dc_error_complex']:.2g}" if "dc_error_complex" in e else "")
            params = ", ".join(f"{k}={p}" for k, p in v.get("params", {}).items()) or "-"
            rows.append(f"| {name} | {meth} | {e['psnr']:.2f} / {e['ssim']:.3f} | {sl['psnr']:.2f} / {sl['ssim']:.3f} "
                        f"| {dc} | {e['seconds_per_slice']:.3f} | {params} |")
    return "\n".join(rows)


def _earlier(path: Path, res: dict) -> dict:
    """The settings of an earlier result made with this command's protocol (else a one-line error)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GankitError(f"{path}: cannot read an earlier benchmark result ({e})") from None
    for key in ("n", "train", "held_out", "protocol"):
        if old.get(key) != res[key]:
            raise GankitError(f"{path}: {key} is {old.get(key)!r} there and {res[key]!r} here; expected the same protocol")
    return old["settings"]


if __name__ == "__main__":
    main()
