"""The reconstruction task's user surface: `gankit recon` and `gankit.api.recon`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import use_flags

USAGE = "gankit recon {run} INPUT --out OUTPUT"
API = ("recon",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows classical reconstruction | gankit | true image panels"}


def commands(sub) -> None:
    rc = sub.add_parser("recon", help="reconstruct an image from a CT sinogram or MRI k-space with a recon run",
                        description="Reconstruct INPUT with a reconstruction run: a CT sinogram (.npy, float, "
                        "(n_detectors, n_angles)), MRI k-space (.npy, complex (N, N), with --mask), or an image "
                        "with --simulate (its measurements simulated, then reconstructed, and the PSNR against the "
                        "image printed). The result is an estimate: its data-consistency error is printed with it. "
                        "Not for diagnosis.")
    rc.add_argument("run", metavar="RUN", help="reconstruction run directory, checkpoint .pt, or exported .safetensors")
    rc.add_argument("input", metavar="INPUT", help="sinogram .npy, k-space .npy, or an image with --simulate")
    rc.add_argument("--out", required=True, metavar="OUTPUT", help=".png (8 bits) or .npy (float32; complex64 for "
                    "data-consistent MRI)")
    rc.add_argument("--simulate", metavar="SPEC", help="for an image: ct:views=V[,photons=P] or mri:accel=A")
    rc.add_argument("--views", type=int, metavar="V", help="a sinogram's angles, V over [0, 180) (default: the "
                    "run's recon.views)")
    rc.add_argument("--mask", metavar="MASK.npy", help="k-space's sampled columns: bool (N,)")
    use_flags(rc)
    rc.set_defaults(func=cmd_recon)


def cmd_recon(args: argparse.Namespace) -> int:
    r = recon(args.run, args.input, args.out, simulate=args.simulate, views=args.views, mask=args.mask,
              overwrite=args.overwrite, device=args.device, ema=not args.no_ema)
    line = f"reconstructed ({r['measure']}): {r['out']}; data-consistency error {r['dc_error']:.3g} " \
           f"(input {r['dc_error_input']:.3g})"
    if "psnr" in r:
        line += f"; PSNR {r['psnr']:.2f} dB against the image (input {r['psnr_input']:.2f} dB)"
    print(line)
    return 0


# -- the Python API (gankit.api.recon) --------------------------------------------------------------


def recon(run_path: str | Path, src: str | Path, out: str | Path, simulate: str | None = None,
          views: int | None = None, mask: str | None = None, overwrite: bool = False, device: str = "cpu",
          ema: bool = True) -> dict:
    """Reconstruct a sinogram, k-space or simulated image with a reconstruction run (see
    `gankit.tasks.recon.infer.recon_path`)."""
    from gankit.api import load
    from gankit.tasks.recon.infer import recon_path

    run = load(run_path, device=device, ema=ema)
    return recon_path(run, src, out, simulate=simulate, views=views, mask=mask, overwrite=overwrite)
