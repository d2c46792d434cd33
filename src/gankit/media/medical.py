"""Medical scans: DICOM series (pydicom) and NIfTI volumes (nibabel) as 2-D slices, and back.

`read_scan(path)` gives a `Scan`: float32 (S, H, W) values in the file's units (DICOM: stored
values times RescaleSlope plus RescaleIntercept, Hounsfield units for CT; NIfTI: the array with
its scl_slope/scl_inter applied, in whatever units its maker chose: NIfTI has no unit guarantee),
slices in order, and what is needed to write them back: the DICOM headers of each slice, or the
NIfTI affine and header. `window_of` chooses a display window (centre, width) and `apply_window`
maps values to [0, 1] through it, linearly from centre - width/2 (0) to centre + width/2 (1),
clipped. Writers: `write_pngs`, `write_nifti` (the source's affine and header), `write_dicom` (a
copy of each source slice with new pixel data and new UIDs, its geometry tags kept). Every write
is atomic. The two libraries are the `medical` extra, imported only when a scan is read.
"""

from __future__ import annotations

import copy
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gankit import disk
from gankit.errors import GankitError
from gankit.media.images import write_image

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Named windows (centre, width) in Hounsfield units: the usual radiology presets.
WINDOWS = {"soft-tissue": (40.0, 400.0), "lung": (-600.0, 1500.0), "bone": (400.0, 1800.0), "brain": (40.0, 80.0)}
AUTO_PERCENTILES = (1.0, 99.0)  # `auto`: the window spans these percentiles of the whole scan's values
WINDOW_HELP = f"file (the scan's own, else auto), auto, {', '.join(WINDOWS)}, or CENTRE,WIDTH (e.g. 40,400)"
INSTALL = "pip install 'gankit[medical]'"


@dataclass
class Scan:
    """A scan's slices in order, and what writing them back needs."""

    values: np.ndarray  # float32 (S, H, W), in `units`
    units: str  # what the values mean, in words
    kind: str  # "dicom" or "nifti"
    source: Path  # the folder or file read
    order: str  # how the slices were ordered, in words
    file_window: tuple[float, float] | None = None  # (centre, width) the file states, if any
    # DICOM: each slice's file and its header (its pixel data dropped once decoded into `values`)
    files: list[Path] = field(default_factory=list)
    headers: list = field(default_factory=list)
    # NIfTI: the affine and header, the slicing axis and the 4-D volume taken
    affine: np.ndarray | None = None
    header: object = None
    axis: int = 2
    volume: int | None = None

    def __len__(self) -> int:
        return len(self.values)

    def slice_names(self) -> list[str]:
        """One name per slice: a DICOM slice's file name, a NIfTI slice's 'file#index'."""
        if self.files:
            return [p.name for p in self.files]
        return [f"{self.source.name}#{i}" for i in range(len(self))]


# ---- what is a medical file -----------------------------------------------------------------

def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def is_dicom(path: Path) -> bool:
    """A .dcm/.dicom file, or a file without suffix that has DICOM's 'DICM' marker at byte 128
    (scanners often export series as IM0001, IM0002, ...). DICOMDIR, an index, is not a slice."""
    if path.name.upper() == "DICOMDIR":
        return False
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_medical(path: Path) -> bool:
    return is_nifti(path) or is_dicom(path)


def holds_medical(folder: Path) -> bool:
    """Whether any file under `folder` (recursively, hidden ones aside) is a DICOM or NIfTI file."""
    return any(p.is_file() and not p.name.startswith(".") and is_medical(p) for p in folder.rglob("*"))


# ---- reading --------------------------------------------------------------------------------

def read_scan(path: str | Path, axis: int = -1, volume: int = 0) -> Scan:
    """A DICOM series (a folder of one series' files, or one file) or a NIfTI volume (.nii,
    .nii.gz; sliced along `axis`, volume `volume` of a 4-D one)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom(p))
        if not files:
            raise GankitError(f"{path}: no DICOM files in this folder (looked for {', '.join(DICOM_SUFFIXES)} and "
                              "suffixless files with the DICM marker)")
        return read_dicom(files, path)
    if not path.is_file():
        raise GankitError(f"{path}: no such file or folder")
    if is_nifti(path):
        return read_nifti(path, axis, volume)
    if is_dicom(path):
        return read_dicom([path], path)
    raise GankitError(f"{path}: not a medical scan; expected a DICOM file or series folder, or a NIfTI file "
                      f"({', '.join(NIFTI_SUFFIXES)})")


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise GankitError(f"reading DICOM needs pydicom: {INSTALL}") from None
    return pydicom


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise GankitError(f"reading NIfTI needs nibabel: {INSTALL}") from None
    return nibabel


def read_dicom(files: list[Path], where: Path) -> Scan:
    """One series from its files: refused if they hold more than one series (one line naming
    two), if a file has no pixel data or does not parse, or if the slices differ in size."""
    pydicom = _pydicom()
    headers = []
    for p in files:
        try:
            ds = pydicom.dcmread(p)
        except Exception as e:  # pydicom raises InvalidDicomError, EOFError, struct/value errors
            raise GankitError(f"{p}: unreadable DICOM file ({type(e).__name__}: {e})") from None
        if "PixelData" not in ds:
            what = getattr(getattr(ds, "SOPClassUID", None), "name", None) or "unknown SOP class"
            raise GankitError(f"{p}: DICOM file without pixel data ({what}); a series folder should hold only "
                              "its image files")
        headers.append(ds)
    series = {}
    for p, ds in zip(files, headers):
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), p)
    if len(series) > 1:
        (u1, p1), (u2, p2) = list(series.items())[:2]
        raise GankitError(f"{where}: mixed DICOM series ({len(series)} SeriesInstanceUIDs, e.g. {u1} in {p1.name} "
                          f"and {u2} in {p2.name}); put each series in its own folder")
    order, how = _slice_order(headers)
    files, headers = [files[i] for i in order], [headers[i] for i in order]
    values = []
    for p, ds in zip(files, headers):
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise GankitError(f"{p}: multi-frame DICOM ({ds.NumberOfFrames} frames) is not read; export the "
                              "series as single-frame files")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise GankitError(f"{p}: colour DICOM ({ds.SamplesPerPixel} samples per pixel); expected greyscale")
        try:
            a = ds.pixel_array
        except Exception as e:  # a compressed transfer syntax without its decoder, damaged data
            raise GankitError(f"{p}: cannot decode the pixel data ({type(e).__name__}: {e})") from None
        del ds.PixelData  # and pydicom's decoded copy: the header is kept for writing, not the pixels twice
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        values.append(a.astype(np.float32) * np.float32(slope) + np.float32(intercept))
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
        (h0, w0), (p, (h, w)) = values[0].shape, next((p, v.shape) for p, v in zip(files, values)
                                                         if v.shape != values[0].shape)
        raise GankitError(f"{p}: slice is {w}x{h} but {files[0].name} is {w0}x{h0} (width x height); "
                          "a series has one slice size")
    return Scan(np.stack(values), _dicom_units(headers[0]), "dicom", where, how,
                file_window=_file_window(headers[0]), files=files, headers=headers)


def _slice_order(headers) -> tuple[list[int], str]:
    """Slices along the normal of their plane (ImagePositionPatient projected on the cross product
    of ImageOrientationPatient's row and column directions), else by InstanceNumber, else as the
    files are named."""
    if all("ImagePositionPatient" in d and "ImageOrientationPatient" in d for d in headers):
        o = np.array(headers[0].ImageOrientationPatient, dtype=np.float64)
        normal = np.cross(o[:3], o[3:])
        z = [float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=np.float64))) for d in headers]
        return sorted(range(len(headers)), key=lambda i: z[i]), "by ImagePositionPatient along the slice normal"
    if all("InstanceNumber" in d for d in headers):
        return sorted(range(len(headers)), key=lambda i: int(headers[i].InstanceNumber)), "by InstanceNumber"
    return list(range(len(headers))), "by file name (no ImagePositionPatient or InstanceNumber)"


def _dicom_units(ds) -> str:
    if str(ds.get("Modality", "")) == "CT":
        return "Hounsfield units (CT, RescaleSlope/Intercept applied)"
    kind = ds.get("RescaleType") or "modality units"
    return f"{kind} ({ds.get('Modality', 'unknown modality')}, RescaleSlope/Intercept applied)"


def _file_window(ds) -> tuple[float, float] | None:
    """The first (centre, width) the header states; DICOM allows several."""
    c, w = ds.get("WindowCenter"), ds.get("WindowWidth")
    if c is None or w is None:
        return None
    first = lambda v: float(v[0]) if hasattr(v, "__len__") and not isinstance(v, str) else float(v)  # noqa: E731
    return (first(c), first(w)) if first(w) > 0 else None


def read_nifti(path: Path, axis: int = -1, volume: int = 0) -> Scan:
    """A NIfTI volume as slices along `axis` (of the 3 spatial ones; -1 the last); a 4-D file
    gives its volume `volume`; more dimensions are refused."""
    nib = _nibabel()
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as e:  # nibabel's ImageFileError, gzip's BadGzipFile, EOFError, ...
        raise GankitError(f"{path}: unreadable NIfTI file ({type(e).__name__}: {e})") from None
    if len(shape) > 4:
        raise GankitError(f"{path}: NIfTI with {len(shape)} dimensions {shape}; gankit reads 2-D, 3-D or 4-D "
                          "volumes (a 4-D one's volumes picked one at a time)")
    if len(shape) == 4:
        if not -shape[3] <= volume < shape[3]:
            raise GankitError(f"{path}: volume {volume} of a 4-D NIfTI with {shape[3]} volumes; expected 0 to "
                              f"{shape[3] - 1}")
        volume = volume % shape[3]
    else:
        volume = None
    if not -3 <= axis < 3:
        raise GankitError(f"{path}: slicing axis {axis}; expected 0, 1 or 2 (-1: the last)")
    axis = axis % 3
    try:
        data = np.asanyarray(img.dataobj[..., volume] if volume is not None else img.dataobj, dtype=np.float32)
    except Exception as e:
        raise GankitError(f"{path}: cannot read the NIfTI data ({type(e).__name__}: {e})") from None
    if data.ndim == 2:
        data = data[:, :, None]
    values = np.ascontiguousarray(np.moveaxis(data, axis, 0))  # (S, H, W): the planes as stored
    units = "NIfTI values, scl_slope/scl_inter applied (NIfTI does not guarantee units: Hounsfield only if its maker wrote them)"
    hdr = img.header
    cal = (float(hdr["cal_min"]), float(hdr["cal_max"])) if "cal_min" in hdr else (0.0, 0.0)
    window = ((cal[0] + cal[1]) / 2, cal[1] - cal[0]) if cal[1] > cal[0] else None
    return Scan(values, units, "nifti", path, f"along array axis {axis}", file_window=window,
                affine=np.array(img.affine), header=hdr.copy(), axis=axis, volume=volume)


# ---- as training data ----------------------------------------------------------------------

def folder_slices(paths: list[Path], root: Path) -> tuple[list[Path], list[str], list[np.ndarray], list[str]]:
    """The medical files among a data folder's `paths` as greyscale images: each folder's DICOM
    files one series, each NIfTI file one volume (its first, if 4-D, sliced along its last axis),
    each windowed by its own file window, else `auto`, to uint8 (H, W, 1). Returns, per slice, the
    file it came from, its name under `root` ('a/b.dcm', 'v.nii.gz#12') and its image, and the
    notes that say how (one per scan for the first two)."""
    dicom, nifti = {}, []
    for p in paths:
        if is_nifti(p):
            nifti.append(p)
        else:
            dicom.setdefault(p.parent, []).append(p)
    # one scan in memory at a time, as float32 values; what is kept is its 8-bit slices
    scans = [*((read_dicom, (files, folder)) for folder, files in dicom.items()), *((read_nifti, (p,)) for p in nifti)]
    sources, names, arrays, notes = [], [], [], []
    for i, (read, args) in enumerate(scans):
        scan = read(*args)
        c, w, note = window_of(scan, "file")
        if i < 2:
            notes.append(note.replace(f"{scan.source}: ", f"{scan.source.relative_to(root.parent).as_posix()}: ", 1))
        sources += scan.files or [scan.source] * len(scan)
        names += ([p.relative_to(root).as_posix() for p in scan.files] if scan.files else
                  [f"{scan.source.relative_to(root).as_posix()}#{k}" for k in range(len(scan))])
        arrays += list(as_uint8(apply_window(scan.values, c, w))[..., None])
    if len(scans) > 2:
        notes.append(f"{len(scans) - 2} more scans read the same way, each by its own file window or auto")
    return sources, names, arrays, notes


# ---- windowing ------------------------------------------------------------------------------

def window_of(scan: Scan, window: str | None = "file") -> tuple[float, float, str]:
    """(centre, width, a one-line note) for `window` (WINDOW_HELP) on `scan`."""
    window = "file" if window is None else str(window).strip()
    if window == "file":
        if scan.file_window is not None:
            c, w = scan.file_window
            what = "WindowCenter/Width" if scan.kind == "dicom" else "cal_min/cal_max"
            return c, w, _note(scan, c, w, f"the file's {what}")
        window = "auto"
    if window == "auto":
        lo, hi = np.percentile(scan.values, AUTO_PERCENTILES)
        c, w = float(lo + hi) / 2, max(float(hi - lo), 1e-6)
        return c, w, _note(scan, c, w, f"auto: percentiles {AUTO_PERCENTILES[0]:g}-{AUTO_PERCENTILES[1]:g} of the scan")
    if window in WINDOWS:
        c, w = WINDOWS[window]
        return c, w, _note(scan, c, w, f"named window {window}")
    try:
        c, w = (float(v) for v in window.split(","))
    except ValueError:
        c, w = 0.0, -1.0
    if not w > 0:
        raise GankitError(f"window {window!r}: expected {WINDOW_HELP}, with width > 0")
    return c, w, _note(scan, c, w, "as given")


def _note(scan: Scan, c: float, w: float, why: str) -> str:
    return (f"{scan.source}: {len(scan)} slices ({scan.order}) in {scan.units}; window centre {c:g} width {w:g} "
            f"({why}) maps {c - w / 2:g}..{c + w / 2:g} to 0..1, clipped")


def apply_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """float32 in [0, 1]: linear from centre - width/2 (0) to centre + width/2 (1), clipped."""
    lo = centre - width / 2
    return np.clip((np.asarray(values, dtype=np.float32) - np.float32(lo)) / np.float32(width), 0, 1)


def unwindow(images: np.ndarray, centre: float, width: float) -> np.ndarray:
    """`apply_window`'s inverse on [0, 1] images: values in the scan's units (what was clipped is lost)."""
    return (np.asarray(images, dtype=np.float32) * np.float32(width) + np.float32(centre - width / 2)).astype(np.float32)


def as_uint8(images01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images01, 0, 1) * 255).astype(np.uint8)


def check_square(scan: Scan, what: str) -> None:
    """Refuse a scan whose slices are not square, saying what to do; for consumers (reconstruction)
    whose forward models take N x N images."""
    s, h, w = scan.values.shape
    if h != w:
        n = min(h, w)
        raise GankitError(f"{scan.source}: slices are {w}x{h} (width x height); {what} needs square slices: crop them "
                          f"to {n}x{n} (or pad to {max(h, w)}x{max(h, w)}) first")


# ---- writing --------------------------------------------------------------------------------

def write_pngs(images01: np.ndarray, folder: str | Path, names: list[str]) -> list[Path]:
    """Each (H, W) image in [0, 1] as an 8-bit grey PNG `folder/NAME.png` (atomically, each)."""
    folder = Path(folder)
    paths = [folder / f"{slice_stem(n)}.png" for n in names]
    for img, p in zip(images01, paths):
        write_image(as_uint8(img), p)
    return paths


def slice_stem(name: str) -> str:
    """'im1.dcm' -> 'im1', 'v.nii.gz#3' -> 'v_3'."""
    base, _, index = name.partition("#")
    for s in (*NIFTI_SUFFIXES, *DICOM_SUFFIXES):
        if base.lower().endswith(s):
            base = base[: -len(s)]
            break
    return f"{base}_{index}" if index else base


def write_nifti(values: np.ndarray, scan: Scan, path: str | Path) -> Path:
    """(S, H, W) values in the scan's units back into a volume (the slicing undone) with the
    source's affine and header, as float32 (no scaling); .nii or .nii.gz by the suffix. A NIfTI
    scan's slices only: a DICOM series has no affine here to give (write DICOM for it)."""
    nib = _nibabel()
    path = Path(path)
    if scan.kind != "nifti":
        raise GankitError(f"{path}: NIfTI output needs a NIfTI source; {scan.source} is DICOM (write DICOM or PNG)")
    if not is_nifti(path):
        raise GankitError(f"{path}: a NIfTI output is named .nii or .nii.gz")
    _check_fits(values, scan, path)
    vol = np.moveaxis(np.asarray(values, dtype=np.float32), 0, scan.axis)
    hdr = scan.header.copy()
    hdr.set_data_dtype(np.float32)
    img = nib.Nifti1Image(vol, scan.affine, header=hdr)
    img.header.set_slope_inter(1.0, 0.0)
    img.header["cal_min"], img.header["cal_max"] = scan.header["cal_min"], scan.header["cal_max"]
    data = img.to_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with disk.atomic(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_dicom(values: np.ndarray, scan: Scan, folder: str | Path, description: str = "gankit") -> list[Path]:
    """One DICOM file per slice in `folder`: a copy of the source slice's header (its geometry:
    ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness,
    FrameOfReferenceUID, and the rest) with the (S, H, W) `values` (the scan's units) rescaled
    back to its stored type (rounded, clipped to its range), a new SOPInstanceUID each, one new
    SeriesInstanceUID, ImageType DERIVED, and SeriesDescription noting `description`. Written
    uncompressed (explicit VR little endian); all files or none."""
    _pydicom()
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    if scan.kind != "dicom":
        raise GankitError(f"{folder}: DICOM output needs a DICOM source; {scan.source} is NIfTI (write NIfTI or PNG)")
    _check_fits(values, scan, folder)
    series_uid = generate_uid()
    written = []
    try:
        for src, ds0, v in zip(scan.files, scan.headers, values):
            ds = copy.deepcopy(ds0)
            slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
            bits, signed = int(ds.BitsStored), int(ds.get("PixelRepresentation", 0)) == 1
            lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
            stored = np.clip(np.round((np.asarray(v, dtype=np.float64) - intercept) / slope), lo, hi)
            dtype = np.dtype(f"{'i' if signed else 'u'}{int(ds.BitsAllocated) // 8}")
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            data = stored.astype(dtype.newbyteorder("<")).tobytes()
            ds.PixelData = data + b"\0" * (len(data) % 2)  # DICOM values have even length
            # native (not encapsulated) now, whatever the source's transfer syntax was
            ds["PixelData"].VR, ds["PixelData"].is_undefined_length = ("OB" if dtype.itemsize == 1 else "OW"), False
            for tag in ("SmallestImagePixelValue", "LargestImagePixelValue", "LossyImageCompression"):
                ds.pop(tag, None)  # described the old pixels
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesInstanceUID = series_uid
            old = str(ds.get("SeriesDescription", "")).strip()
            ds.SeriesDescription = (f"{old} ({description})" if old else description)[:64]  # LO: 64 chars
            if "ImageType" in ds:
                kept = list(ds.ImageType)[1:] if ds["ImageType"].VM > 1 else []
                ds.ImageType = ["DERIVED", *kept] if kept else "DERIVED"
            name = src.name if src.suffix else f"{src.name}.dcm"
            out = folder / name
            with disk.atomic(out) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
            written.append(out)
    except BaseException:
        for p in written:  # the series whole or not at all
            disk.remove(p)
        raise
    return written


def _check_fits(values: np.ndarray, scan: Scan, out: Path) -> None:
    got, want = tuple(np.shape(values)), scan.values.shape
    if got != want:
        raise GankitError(f"{out}: {got[0] if got else 0} slices of {'x'.join(map(str, got[1:][::-1]))} cannot go "
                          f"back into {scan.source} ({want[0]} slices of {want[2]}x{want[1]}); write PNG instead, "
                          "or give slices of the source's size")
