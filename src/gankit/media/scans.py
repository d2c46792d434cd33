"""A medical scan (DICOM series, NIfTI volume) as an inference input: each slice through one
function, the results written back as a scan or as PNGs.

    apply_to_scan(fn, "ct/", "ct-denoised/", ScanOptions(window="soft-tissue"))

Each slice is read in its units (`gankit.media.medical`), mapped to [0, 1] through the window
(default `file`: the scan's own, else `auto`; the same rule the training folders use, so a run
trained on scans sees its inputs as it saw its data), run, and mapped back through the same
window into the scan's units. What comes back is the window's range only: values the window
clipped on reading stay at its ends. The output format follows `--out`:

    OUT.nii, OUT.nii.gz   a NIfTI volume with the source's affine and header (NIfTI source)
    DIR (no suffix)       a DICOM series, the source's geometry kept, new UIDs, DERIVED (DICOM
                          source); PNGs, one per slice (NIfTI source, or slice_format="png")
    OUT.dcm               one DICOM file (a one-slice DICOM source)
    OUT.png, .jpg, .bmp   one 8-bit image (a one-slice scan)

Every refusal is one line, before any slice is run; every output appears whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gankit.errors import GankitError
from gankit.media import medical
from gankit.media.images import IMAGE_SUFFIXES, write_image

SLICE_FORMATS = ("dicom", "png")


@dataclass(frozen=True)
class ScanOptions:
    """How a scan input is read and written: the window (medical.WINDOW_HELP; None: `file`), and
    the format of a folder output (None: the source's, DICOM, or PNG for a NIfTI source)."""

    window: str | None = None
    slice_format: str | None = None
    axis: int = -1  # NIfTI: the slicing axis
    volume: int = 0  # NIfTI: the volume of a 4-D file


def as_image(slice01: np.ndarray) -> np.ndarray:
    """A windowed slice (H, W) in [0, 1] as the image tasks take it: uint8 (H, W, 1)."""
    return medical.as_uint8(slice01)[:, :, None]


def is_scan_input(path: Path) -> bool:
    """A DICOM or NIfTI file, or a folder holding DICOM files directly (a series)."""
    if path.is_dir():
        return any(p.is_file() and not p.name.startswith(".") and medical.is_dicom(p) for p in path.iterdir())
    return path.is_file() and medical.is_medical(path)


def output_format(scan: medical.Scan, out: Path, opts: ScanOptions) -> str:
    """'nifti', 'dicom-series', 'dicom-file', 'pngs' or 'image' for `out`; one line when `out`
    cannot hold this scan."""
    if opts.slice_format not in (None, *SLICE_FORMATS):
        raise GankitError(f"--slice-format {opts.slice_format!r}: expected one of {', '.join(SLICE_FORMATS)}")
    src, n = scan.source, len(scan)
    name = out.name.lower()
    if medical.is_nifti(out):
        if scan.kind != "nifti":
            raise GankitError(f"--out {out}: NIfTI output needs a NIfTI input; {src} is DICOM (write a folder: a "
                              "DICOM series, or PNGs with --slice-format png)")
        return "nifti"
    if name.endswith(medical.DICOM_SUFFIXES):
        if scan.kind != "dicom" or n != 1:
            raise GankitError(f"--out {out}: one DICOM file holds one slice of a DICOM input; {src} is "
                              f"{'a NIfTI volume' if scan.kind == 'nifti' else 'a series'} of {n} slices (give a "
                              "folder)")
        return "dicom-file"
    if out.suffix.lower() in IMAGE_SUFFIXES:
        if n != 1:
            raise GankitError(f"--out {out}: one image holds one slice; {src} has {n} (give a folder: one file per "
                              "slice)")
        return "image"
    if out.suffix and not out.is_dir():
        raise GankitError(f"--out {out}: unknown suffix {out.suffix!r} for a scan; expected a folder, .nii, .nii.gz, "
                          f".dcm (one slice) or {', '.join(IMAGE_SUFFIXES)} (one slice)")
    fmt = opts.slice_format or ("dicom" if scan.kind == "dicom" else "png")
    if fmt == "dicom" and scan.kind != "dicom":
        raise GankitError(f"--slice-format dicom: DICOM output needs a DICOM input; {src} is NIfTI (write "
                          f"OUT.nii.gz, or PNGs)")
    return "dicom-series" if fmt == "dicom" else "pngs"


def apply_to_scan(fn: Callable[[np.ndarray, str], np.ndarray], src: str | Path, out: str | Path,
                  opts: ScanOptions | None = None, overwrite: bool = False, log=None) -> dict:
    """Run `fn(slice, where)` on each slice of the scan `src`: `slice` float32 (H, W) in [0, 1]
    (windowed), the result either float (H', W') in [0, 1] or uint8 (H', W', C) (an image
    task's output; C = 3 only for image outputs). Written per `output_format`; returns {kind:
    "scan", n, out, format, window: the reading note, back: the note on writing back}."""
    from gankit.media.apply import AtomicDir  # apply dispatches scans here: imported late, no cycle

    opts = opts or ScanOptions()
    src, out = Path(src), Path(out)
    log = log or (lambda msg: None)
    if out.resolve() == src.resolve():
        raise GankitError(f"--out {out}: the same path as the input; choose another output")
    scan = medical.read_scan(src, opts.axis, opts.volume)
    fmt = output_format(scan, out, opts)
    if fmt in ("nifti", "dicom-file", "image") and out.exists() and not overwrite:
        raise GankitError(f"--out {out}: already exists; choose another path or pass --overwrite")
    if fmt in ("dicom-series", "pngs"):
        AtomicDir(out, overwrite)._check()  # before the slices are run
    c, w, note = medical.window_of(scan, opts.window)
    log(note)
    images = medical.apply_window(scan.values, c, w)  # (S, H, W) in [0, 1]
    names = scan.slice_names()
    results, eight_bit = [], False
    for img, name in zip(images, names):
        where = f"{src} slice {name}"
        r = np.asarray(fn(img, where))
        eight_bit |= r.dtype == np.uint8
        results.append(_as_float_or_rgb(r, where, fmt))
    if fmt in ("image", "pngs"):
        pictures = [r if r.dtype == np.uint8 else medical.as_uint8(r) for r in results]
        if fmt == "image":
            write_image(pictures[0], out)
        else:
            with AtomicDir(out, overwrite) as tmp:
                for p, n in zip(pictures, names):
                    write_image(p, tmp / f"{medical.slice_stem(n)}.png")
        back = "written as 8-bit images in [0, 1] (the window's 0..255), not in the scan's units"
        log(back)
        return {"kind": "scan", "n": len(scan), "out": str(out), "format": fmt, "window": note, "back": back}
    values = medical.unwindow(np.stack(results), c, w)  # (S, H, W) in the scan's units
    step = f", 8-bit results: steps of {w / 255:.3g}" if eight_bit else ""
    back = (f"written back in {scan.units.split(' (')[0]}: 0..1 -> {c - w / 2:g}..{c + w / 2:g} (the reading window "
            f"inverted{step}); values outside it were clipped on reading and come back at its ends")
    if fmt == "nifti":
        medical.write_nifti(values, scan, out)
    elif fmt == "dicom-series":
        with AtomicDir(out, overwrite) as tmp:
            medical.write_dicom(values, scan, tmp)
    else:  # one DICOM file: written in a scratch folder beside it, then renamed into place
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
            written = medical.write_dicom(values, scan, tmp)
            os.replace(written[0], out)
    log(back)
    return {"kind": "scan", "n": len(scan), "out": str(out), "format": fmt, "window": note, "back": back}


def _as_float_or_rgb(r: np.ndarray, where: str, fmt: str) -> np.ndarray:
    """A slice's result as float32 (H, W) in [0, 1], or uint8 (H, W, 3) kept for image outputs."""
    r = np.asarray(r)
    if r.dtype == np.uint8:
        if r.ndim == 3 and r.shape[2] == 3:
            if fmt not in ("image", "pngs"):
                raise GankitError(f"{where}: the run makes RGB images, which cannot go back into a scan; write PNGs "
                                  "(--slice-format png, or an .png --out for one slice)")
            return r
        return (r.reshape(r.shape[:2]) / np.float32(255)).astype(np.float32)
    return np.clip(r.astype(np.float32), 0, 1)
