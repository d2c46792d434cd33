"""Repairing a user's images: with a learned inpainter (an `inpaint` run, `--method learned`) or
by inverting an unconditional generator (a `generate` run, `--method invert`,
`gankit.tasks.generate.invert`).

    repair_images(run, x, masks)                      uint8 tensors in, (repaired, info) out
    repair_path(run, "scan.png", "fixed.png", mask="hole.png")
    repair_path(run, "scans/", "fixed/", mask="holes/")   # masks matched to images by name
    repair_path(run, "a.png", "b.png", box=(4, 4, 10, 10))

A mask is an image whose white pixels (>= 128 of 255) are missing (`gankit.data.masks.load_mask`:
a mask that is not binary is thresholded and said so; one of another size than its image is
refused unless `resize_mask`). The learned inpainter is fully convolutional and takes any size;
inversion needs the generator's size. An image whose channel count differs from the run's is
converted with one line (`strict` refuses). Every known pixel of the output is the input's own
byte. `show` also writes a side-by-side picture per image: damaged | repaired | mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit.data.masks import load_mask, masks_for_folder
from gankit.errors import GankitError, warn
from gankit.media.apply import AtomicDir, input_kind
from gankit.media.scans import ScanOptions, apply_to_scan, as_image
from gankit.media.images import NoteOnce, conform, list_images, read_image, write_image

METHODS = ("learned", "invert")


def pick_method(run, method: str | None) -> str:
    """The method a run supports: learned for inpaint runs, invert for generate runs."""
    if method is None:
        method = "learned" if run.task == "inpaint" else "invert"
    if method not in METHODS:
        raise GankitError(f"--method {method!r}; choose one of: {', '.join(METHODS)}")
    if method == "learned":
        run.need("inpaint", "--method learned")
    else:
        from gankit.tasks.generate.invert import check_invertible

        check_invertible(run)
    return method


def repair_images(run, x: torch.Tensor, masks: torch.Tensor, method: str | None = None, settings=None,
                  batch: int = 64) -> tuple[torch.Tensor, dict]:
    """uint8 (N, C, H, W) images and bool (N, 1, H, W) holes -> (uint8 repaired images, info)."""
    method = pick_method(run, method)
    if x.dtype != torch.uint8 or x.ndim != 4 or masks.dtype != torch.bool or masks.shape != (len(x), 1, *x.shape[2:]):
        raise GankitError(f"repair takes uint8 (N, C, H, W) images and bool (N, 1, H, W) masks; got {x.dtype} "
                          f"{tuple(x.shape)} and {masks.dtype} {tuple(masks.shape)}")
    if method == "learned":
        from gankit.tasks.inpaint.evaluation import complete

        return complete(run.nets["G"], x, masks, run.device, batch), {"method": "learned"}
    from gankit.tasks.generate.invert import InvertSettings, invert

    out, info = invert(run, x, masks, settings or InvertSettings())
    return out, {"method": "invert", **info}


def _box_mask(box: tuple[int, int, int, int], h: int, w: int, where: str) -> torch.Tensor:
    x0, y0, bw, bh = box
    if bw < 1 or bh < 1 or x0 < 0 or y0 < 0 or x0 + bw > w or y0 + bh > h:
        raise GankitError(f"--box {x0},{y0},{bw},{bh}: must lie inside {where} ({w}x{h}); x,y is the top-left "
                          "corner, w,h the size, in pixels")
    if bw * bh == w * h:
        raise GankitError(f"--box {x0},{y0},{bw},{bh}: covers all of {where}; no known pixels to repair from")
    m = torch.zeros((1, h, w), dtype=torch.bool)
    m[:, y0:y0 + bh, x0:x0 + bw] = True
    return m


def parse_box(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise GankitError(f"--box {text!r}: expected x,y,w,h as four whole numbers (e.g. --box 4,4,12,12)")
    return parts  # type: ignore[return-value]


def _load(run, method: str, f: Path, mask_file: Path | None, box, resize_mask: bool, strict: bool, notes: NoteOnce,
          log) -> tuple[torch.Tensor, torch.Tensor]:
    """An image as the run takes it (uint8 (C, H, W)) and its hole (bool (1, H, W))."""
    return _load_array(run, method, read_image(f), f, mask_file, box, resize_mask, strict, notes, log)


def _load_array(run, method: str, img: np.ndarray, f: Path, mask_file: Path | None, box, resize_mask: bool,
                strict: bool, notes: NoteOnce, log) -> tuple[torch.Tensor, torch.Tensor]:
    c, *size = run.data_meta["shape"]
    h, w = img.shape[:2] if method == "learned" else size
    x, note = conform(img, (c, h, w), strict, str(f))
    notes.add(note)
    if mask_file is not None:
        m, mnotes = load_mask(mask_file, (h, w), resize_mask)
        for n in mnotes:
            log(n)
    else:
        m = _box_mask(box, h, w, str(f))
    return torch.from_numpy(np.array(x)), m


def _named(f: Path, fn, *args):
    """fn(*args), with the file named in a user error it raises (an image too small for the U-Net)."""
    try:
        return fn(*args)
    except GankitError as e:
        raise GankitError(f"{f}: {e}") from None


def repair_file(run, image: str | Path, mask: str | Path | None = None, box: tuple[int, int, int, int] | None = None,
                method: str | None = None, settings=None, resize_mask: bool = False, strict: bool = False,
                log: Callable[[str], None] = warn) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One image file repaired in memory: (uint8 (C, H, W) repaired image, bool (1, H, W) mask, info)."""
    method = pick_method(run, method)
    if (mask is None) == (box is None):
        raise GankitError("give the hole as a mask image or a box (x, y, w, h), not both")
    notes = NoteOnce(log)
    x, m = _load(run, method, Path(image), None if mask is None else Path(mask), box, resize_mask, strict, notes, log)
    notes.close("images")
    y, info = _named(Path(image), repair_images, run, x[None], m[None], method, settings)
    return y[0], m, info


def _repair_scan(run, method: str, src: Path, out: Path, mask, box, settings, show: bool, resize_mask: bool,
                 strict: bool, overwrite: bool, log, scan: ScanOptions | None) -> dict:
    """Every slice of a scan through the same hole (one mask image or box: slices share a grid)."""
    if show:
        raise GankitError("--show: not for a scan; write the slices as PNGs (--slice-format png) to compare them")
    if mask is not None and Path(mask).is_dir():
        raise GankitError(f"--mask {mask}: is a folder; a scan takes one mask image for all its slices")
    notes, first = NoteOnce(log), [True]

    def one(img: np.ndarray, where: str) -> np.ndarray:
        f = Path(where)
        say = log if first[0] else (lambda line: None)  # the mask's notes once: every slice shares it
        first[0] = False
        x, m = _load_array(run, method, as_image(img), f, None if mask is None else Path(mask), box, resize_mask, strict,
                           notes, say)
        y, _ = _named(f, repair_images, run, x[None], m[None], method, settings)
        return y[0].permute(1, 2, 0).numpy()

    done = apply_to_scan(one, src, out, scan, overwrite, log)
    notes.close("slices")
    return {**done, "method": method}


def repair_path(run, src: str | Path, out: str | Path, mask: str | Path | None = None,
                box: tuple[int, int, int, int] | None = None, method: str | None = None, settings=None,
                show: bool = False, resize_mask: bool = False, strict: bool = False, overwrite: bool = False,
                log: Callable[[str], None] = warn, scan: ScanOptions | None = None) -> dict:
    """Repair an image, a folder of images, or each slice of a scan with one mask or box
    (`gankit.media.scans`; see the module docstring); outputs appear whole or not at all.
    Returns {kind, n, out, method, show?}."""
    method = pick_method(run, method)
    src, out = Path(src), Path(out)
    if (mask is None) == (box is None):
        raise GankitError("give the hole as --mask MASK (an image, or a folder of masks for a folder) or "
                          "--box x,y,w,h, not both")
    kind = input_kind(src)
    if kind == "video":
        raise GankitError(f"{src}: repair takes an image, a folder of images or a scan, not a video")
    if kind == "scan":
        return _repair_scan(run, method, src, out, mask, box, settings, show, resize_mask, strict, overwrite, log,
                            scan)
    if out.resolve() == src.resolve():
        raise GankitError(f"--out {out}: the same path as the input; choose another output")
    if kind == "image" and out.exists() and not overwrite:
        raise GankitError(f"--out {out}: already exists; choose another path or pass --overwrite")
    if kind == "image" and out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        raise GankitError(f"--out {out}: an image is written as .png, .jpg, .jpeg or .bmp")
    files = [src] if kind == "image" else list_images(src)
    if mask is not None:
        mask = Path(mask)
        if kind == "folder":
            if not mask.is_dir():
                raise GankitError(f"--mask {mask}: a folder of images needs a folder of masks (matched by name)")
            mask_files = masks_for_folder(files, mask)
        else:
            if mask.is_dir():
                raise GankitError(f"--mask {mask}: is a folder; one image takes one mask image")
            mask_files = [mask]
    notes = NoteOnce(log)
    results = []
    for i, f in enumerate(files):  # everything is read and checked before anything is written
        x, m = _load(run, method, f, mask_files[i] if mask is not None else None, box, resize_mask, strict, notes, log)
        results.append((f, x, m))
    notes.close("images")
    fixed = []
    for f, x, m in results:  # one at a time: sizes may differ
        y, info = _named(f, repair_images, run, x[None], m[None], method, settings)
        fixed.append((f, x, m, y[0], info))

    def hwc(t: torch.Tensor) -> np.ndarray:
        return t.permute(1, 2, 0).numpy()

    def side_by_side(x, m, y) -> np.ndarray:
        damaged = torch.where(m, torch.full_like(x, 255), x)
        mask_img = (m.to(torch.uint8) * 255).expand_as(x)
        gap = torch.full((x.shape[0], x.shape[1], max(2, x.shape[2] // 32)), 128, dtype=torch.uint8)
        return hwc(torch.cat([damaged, gap, y, gap, mask_img], 2))

    done = {"kind": kind, "n": len(fixed), "out": str(out), "method": method}
    if kind == "image":
        f, x, m, y, info = fixed[0]
        done["info"] = info
        write_image(hwc(y), out)
        if show:
            shown = out.with_name(out.stem + "_show.png")
            write_image(side_by_side(x, m, y), shown)
            done["show"] = str(shown)
        return done
    with AtomicDir(out, overwrite=overwrite) as tmp:
        for f, x, m, y, _ in fixed:
            dst = tmp / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(hwc(y), dst)
            if show:
                write_image(side_by_side(x, m, y), dst.with_name(dst.stem + "_show.png"))
    return done
