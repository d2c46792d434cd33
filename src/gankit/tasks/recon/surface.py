"""The reconstruction task's user surface: `gankit recon` and `gankit.api.recon`. No torch at
import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import image_command, use_args

USAGE = "gankit recon {run} INPUT --out OUTPUT"
API = ("recon",)
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows classical reconstruction | gankit | true image panels"}


def commands(sub) -> None:
    with image_command(sub, "recon", func=cmd_recon, scan=True,
                       help="reconstruct an image from a CT sinogram or MRI k-space with a recon run",
                       description="Reconstruct INPUT with a reconstruction run: a CT sinogram (.npy, float, "
                       "(n_detectors, n_angles)), MRI k-space (.npy, complex (N, N), with --mask), or an image "
                       "or a scan (DICOM file or series folder, NIfTI volume: each slice) with --simulate (its "
                       "measurements simulated, then reconstructed, and the PSNR against the image printed). The "
                       "result is an estimate: its data-consistency error is printed with it. Not for diagnosis.",
                       run_help="reconstruction run directory, checkpoint .pt, or exported .safetensors",
                       input_help="sinogram .npy, k-space .npy, or an image or scan with --simulate",
                       out_help=".png (8 bits) or .npy (float32; complex64 for data-consistent MRI); a scan: a "
                       "folder, .nii/.nii.gz, .dcm or .png (docs/medical-io.md)") as rc:
        rc.add_argument("--simulate", metavar="SPEC", help="for an image: ct:views=V[,photons=P] or mri:accel=A")
        rc.add_argument("--views", type=int, metavar="V", help="a sinogram's angles, V over [0, 180) (default: the "
                        "run's recon.views)")
        rc.add_argument("--mask", metavar="MASK.npy", help="k-space's sampled columns: bool (N,)")


def cmd_recon(args: argparse.Namespace) -> int:
    r = recon(args.run, args.input, args.out, simulate=args.simulate, views=args.views, mask=args.mask,
              **use_args(args))
    mean = "mean over its slices: " if r["kind"] == "scan" else ""
    what = f"{r['n']} scan slices " if r["kind"] == "scan" else ""
    line = f"reconstructed {what}({r['measure']}): {r['out']}; {mean}data-consistency error {r['dc_error']:.3g} " \
           f"(input {r['dc_error_input']:.3g})"
    if "psnr" in r:
        line += f"; PSNR {r['psnr']:.2f} dB against the image (input {r['psnr_input']:.2f} dB)"
    print(line)
    return 0


# -- the Python API (gankit.api.recon) --------------------------------------------------------------


def recon(run_path: str | Path, src: str | Path, out: str | Path, simulate: str | None = None,
          views: int | None = None, mask: str | None = None, overwrite: bool = False, device: str = "cpu",
          ema: bool = True, window: str | None = None, slice_format: str | None = None) -> dict:
    """Reconstruct a sinogram, k-space or simulated image with a reconstruction run (see
    `gankit.tasks.recon.infer.recon_path`)."""
    from gankit.api import load
    from gankit.media.scans import ScanOptions
    from gankit.tasks.recon.infer import recon_path

    run = load(run_path, device=device, ema=ema)
    return recon_path(run, src, out, simulate=simulate, views=views, mask=mask, overwrite=overwrite,
                      scan=ScanOptions(window, slice_format))
