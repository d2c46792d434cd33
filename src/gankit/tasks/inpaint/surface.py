"""The inpainting task's user surface: `gankit repair` (learned, or by inverting a generation run)
and `gankit.api.repair` / `repair_file`. No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import done, image_command, use_args

USAGE = "gankit repair {run} IMAGE --mask MASK.png --out fixed.png"
API = ("repair", "repair_file")
# scored against held-out targets: the report shows the evaluation first
REPORT = {"scored": True, "grid": "each grid shows input | output | target panels"}


def commands(sub) -> None:
    with image_command(sub, "repair", func=cmd_repair, scan=True,
                       help="fill the holes of an image or a folder of images (inpainting)",
                       description="Repair INPUT (an image, or a folder of images with a folder of masks matched "
                       "by name) where its mask is white, with a learned inpainter (an inpaint run: --method learned) "
                       "or by inverting an unconditional generator (a generate run: --method invert). Known pixels "
                       "are kept exactly. A filled hole is a plausible guess, not a measurement.",
                       run_help="inpaint or generate run directory, or checkpoint .pt",
                       input_help="image, folder of images, or a scan (DICOM file or series folder, NIfTI volume: "
                       "one --mask or --box for every slice)",
                       out_help="image file (.png, .jpg, .bmp), or folder") as rp:
        rp.add_argument("--mask", metavar="MASK",
                        help="mask image (white = missing), or a folder of masks for a folder")
        rp.add_argument("--box", metavar="X,Y,W,H", help="a rectangular hole instead of a mask: top-left x,y and size")
        rp.add_argument("--method", choices=("learned", "invert"),
                        help="learned (inpaint runs; the default for them) or invert (generate runs; theirs)")
        rp.add_argument("--show", action="store_true", help="also write NAME_show.png: damaged | repaired | mask")
        rp.add_argument("--resize-mask", action="store_true",
                        help="resize a mask of another size to its image (nearest)")
        rp.add_argument("--restarts", type=int, default=8, help="invert: random restarts per image (default 8)")
        rp.add_argument("--steps", type=int, default=300, help="invert: Adam steps per restart (default 300)")
        rp.add_argument("--prior", choices=("d", "norm", "none"), default="d",
                        help="invert: the prior loss: d (the run's discriminator, Yeh et al.), norm (|z|), none")
        rp.add_argument("--seed", type=int, default=0, help="invert: seed of the restarts' starting latents")
        rp.add_argument("--strict", action="store_true", help="refuse images whose channels (or, invert, size) differ")


def cmd_repair(args: argparse.Namespace) -> int:
    from gankit.tasks.generate.invert import InvertSettings
    from gankit.tasks.inpaint.infer import parse_box

    box = parse_box(args.box) if args.box else None
    settings = InvertSettings(restarts=args.restarts, steps=args.steps, prior=args.prior, seed=args.seed)
    r = repair(args.run, args.input, args.out, args.mask, box, args.method, settings, show=args.show,
               resize_mask=args.resize_mask, strict=args.strict, **use_args(args))
    print(f"repaired {done(r)} ({r['method']}): {r['out']}" + (f"  (side by side: {r['show']})" if "show" in r else ""))
    return 0


# -- the Python API (gankit.api.repair, gankit.api.repair_file) ------------------------------------


def repair(run_path: str | Path, src: str | Path, out: str | Path, mask: str | Path | None = None,
           box: tuple[int, int, int, int] | None = None, method: str | None = None, settings=None,
           show: bool = False, resize_mask: bool = False, strict: bool = False, overwrite: bool = False,
           device: str = "cpu", ema: bool = True, window: str | None = None,
           slice_format: str | None = None) -> dict:
    """Repair an image or a folder of images into files: `method` learned (an inpaint run) or
    invert (an unconditional generate run); see `gankit.tasks.inpaint.infer.repair_path`. In
    memory: `repair_file` (one image file -> tensors), and
    `gankit.tasks.inpaint.infer.repair_images(run, x, masks)` (tensors -> tensors)."""
    from gankit.api import load
    from gankit.media.scans import ScanOptions
    from gankit.tasks.inpaint.infer import repair_path

    run = load(run_path, device=device, ema=ema)
    return repair_path(run, src, out, mask, box, method, settings, show=show, resize_mask=resize_mask,
                       strict=strict, overwrite=overwrite, scan=ScanOptions(window, slice_format))


def repair_file(run_path: str | Path, image: str | Path, mask: str | Path | None = None,
                box: tuple[int, int, int, int] | None = None, method: str | None = None, settings=None,
                resize_mask: bool = False, strict: bool = False, device: str = "cpu", ema: bool = True):
    """One image repaired in memory: (uint8 (C, H, W) repaired image, bool (1, H, W) mask with
    True where pixels were missing, info)."""
    from gankit.api import load
    from gankit.tasks.inpaint.infer import repair_file as _repair_file

    run = load(run_path, device=device, ema=ema)
    return _repair_file(run, image, mask, box, method, settings, resize_mask=resize_mask, strict=strict)
