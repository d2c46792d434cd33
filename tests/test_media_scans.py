"""Scans as inference input (gankit.media.scans, through gankit.media.apply.apply_to_media): each
slice windowed, run, and written back as a DICOM series (geometry kept, new UIDs, DERIVED), a
NIfTI volume (affine kept), or PNGs, by --out; bad inputs and outputs refused in one line with
nothing written. The slice function here is a known one (identity, negation), so the values that
come back can be computed by hand; a denoising run's command goes through the same path."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.media import medical
from gankit.media.apply import apply_to_media, input_kind
from gankit.media.scans import ScanOptions, apply_to_scan
from gankit.run import Run
from gankit.tasks import get_task


def _helpers():
    """tests/test_medical_io.py's synthetic CT series (tests are not a package: imported by path)."""
    spec = importlib.util.spec_from_file_location("_medical_io_helpers", Path(__file__).with_name("test_medical_io.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GEOMETRY, mod.hu_volume, mod.write_series


GEOMETRY, hu_volume, write_series = _helpers()
C, W = 40.0, 400.0  # the test series' own window: -160..240 HU


def _expected(vol: np.ndarray, fn) -> np.ndarray:
    """What comes back: the windowed 8-bit slice through fn, unwindowed (values in HU)."""
    img = medical.as_uint8(medical.apply_window(vol, C, W))
    return medical.unwindow(fn(img) / np.float32(255), C, W)


def _nifti(path: Path, vol: np.ndarray) -> np.ndarray:
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = (-10, 5, 30)
    nib.save(nib.Nifti1Image(np.moveaxis(vol, 0, -1).astype(np.float32), affine), str(path))
    return affine


def test_a_dicom_series_goes_back_as_a_series_with_its_geometry(tmp_path):
    vol = hu_volume()
    src = write_series(tmp_path / "ct", vol)
    notes = []
    r = apply_to_media(lambda img, where: 255 - img, tmp_path / "ct", tmp_path / "out", log=notes.append)
    assert r["kind"] == "scan" and r["n"] == 4 and r["format"] == "dicom-series"
    assert "window centre 40 width 400" in notes[0] and "-160..240" in notes[1] and "steps of 1.57" in notes[1]
    out = medical.read_scan(tmp_path / "out")
    # values: the negated window, back in HU, to the stored type's rounding (1 HU)
    np.testing.assert_allclose(out.values, _expected(vol, lambda a: 255 - a), atol=0.51)
    assert not np.allclose(out.values, _expected(vol, lambda a: a), atol=1)  # the function did run
    old = [medical.read_scan(p).headers[0] for p in sorted(src)]
    new = {h.InstanceNumber: h for h in out.headers}
    for h0 in old:
        h = new[h0.InstanceNumber]
        for tag in GEOMETRY:
            assert h.get(tag) == h0.get(tag), tag
        assert h.SOPInstanceUID != h0.SOPInstanceUID and h.SeriesInstanceUID != h0.SeriesInstanceUID
        assert h.ImageType[0] == "DERIVED"
    assert not (tmp_path / "out.partial").exists()


def test_a_nifti_volume_goes_back_with_its_affine_and_pngs_are_the_window(tmp_path):
    vol = hu_volume(3)
    affine = _nifti(tmp_path / "v.nii.gz", vol)
    ident = lambda x, where: x  # noqa: E731  float in, float out: no 8-bit step
    r = apply_to_scan(ident, tmp_path / "v.nii.gz", tmp_path / "o.nii.gz", ScanOptions(window="40,400"))
    assert r["format"] == "nifti"
    img = nib.load(str(tmp_path / "o.nii.gz"))
    np.testing.assert_allclose(img.affine, affine)
    want = medical.unwindow(medical.apply_window(vol, C, W), C, W)  # clipped to -160..240
    np.testing.assert_allclose(np.moveaxis(np.asarray(img.dataobj), -1, 0), want, atol=1e-3)
    assert want.min() == -160 and vol.min() == -1000  # what the window clipped comes back at its end
    # a folder out: one PNG per slice, the windowed slice itself
    r = apply_to_scan(ident, tmp_path / "v.nii.gz", tmp_path / "png", ScanOptions(window="40,400"))
    assert r["format"] == "pngs" and sorted(p.name for p in (tmp_path / "png").iterdir()) == ["v_0.png", "v_1.png",
                                                                                             "v_2.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" / "v_1.png")),
                                  medical.as_uint8(medical.apply_window(vol[1], C, W)))


def test_one_dicom_file_goes_to_one_file_and_a_series_to_pngs_on_request(tmp_path):
    src = write_series(tmp_path / "ct", hu_volume(2))
    r = apply_to_media(lambda img, where: img, src[0], tmp_path / "one.dcm")
    assert r["format"] == "dicom-file" and medical.read_scan(tmp_path / "one.dcm").values.shape == (1, 32, 32)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the scratch folder is gone
    r = apply_to_media(lambda img, where: img, tmp_path / "ct", tmp_path / "p", scan=ScanOptions(slice_format="png"))
    assert r["format"] == "pngs" and sorted(p.name for p in (tmp_path / "p").iterdir()) == ["im1.png", "im2.png"]
    assert input_kind(tmp_path / "ct") == "scan" and input_kind(tmp_path / "p") == "folder"


@pytest.mark.parametrize("src, out, opts, fn, msg", [
    ("ct", "o.nii.gz", None, None, "NIfTI output needs a NIfTI input"),
    ("ct", "o.png", None, None, "one image holds one slice; "),
    ("ct", "o.dcm", None, None, "one DICOM file holds one slice"),
    ("ct", "o.txt", None, None, "unknown suffix '.txt' for a scan"),
    ("v.nii.gz", "dir", ScanOptions(slice_format="dicom"), None, "DICOM output needs a DICOM input"),
    ("ct", "dir", ScanOptions(window="lungs"), None, "window 'lungs': expected file"),
    ("ct", "dir", None, lambda img, where: np.repeat(img, 3, 2), "RGB images, which cannot go back into a scan"),
    ("ct", "dir", None, lambda img, where: img[::2], "cannot go back into"),  # another size: write PNG instead
    ("mixed", "dir", None, None, "mixed DICOM series"),
    (".", "dir", None, None, "holds scans in its subfolders, not one series"),
])
def test_bad_scan_inputs_and_outputs_are_one_line_with_nothing_written(tmp_path, src, out, opts, fn, msg):
    write_series(tmp_path / "ct", hu_volume(2))
    write_series(tmp_path / "mixed", hu_volume(1))
    write_series(tmp_path / "mixed2", hu_volume(1))
    (tmp_path / "mixed2" / "im1.dcm").rename(tmp_path / "mixed" / "im9.dcm")
    _nifti(tmp_path / "v.nii.gz", hu_volume(2))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(GankitError) as e:
        apply_to_media(fn or (lambda img, where: img), tmp_path / src, tmp_path / out, scan=opts)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_denoise_command_reads_and_writes_a_dicom_series(tmp_path, capsys):
    """A denoising run (untrained: the path is what is tested) on a series, through the CLI."""
    cfg = gankit.load_config("denoise", overrides=["model.g_width=4", "device=cpu"])
    meta = {"name": "t", "kind": "image", "shape": [1, 32, 32], "scale": 1.0, "classes": None}
    torch.manual_seed(0)
    nets = get_task("denoise").inference_nets(cfg, meta)
    run = Run.for_task("denoise")(directory=Path("."), config=cfg, nets=nets, data_meta=meta, step=0,
                                  device=torch.device("cpu"), ema=False, task="denoise")
    from gankit.export import _write_pair

    _write_pair(run, tmp_path / "d.safetensors", tmp_path / "d.json")
    write_series(tmp_path / "ct", hu_volume(2))
    assert main(["denoise", str(tmp_path / "d.safetensors"), str(tmp_path / "ct"), "--out", str(tmp_path / "o"),
                 "--window", "soft-tissue"]) == 0
    captured = capsys.readouterr()
    assert "denoised 2 scan slices" in captured.out and "named window soft-tissue" in captured.err
    assert medical.read_scan(tmp_path / "o").values.shape == (2, 32, 32)


# -- zips of scans as training data ---------------------------------------------------------------


def _zip(folder: Path, out: Path, under: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, under + p.relative_to(folder).as_posix())
    return out


def test_a_zip_of_scans_loads_as_its_folder_does(tmp_path):
    from gankit.data import load_data

    write_series(tmp_path / "set" / "healthy" / "p1", hu_volume(2))
    write_series(tmp_path / "set" / "lesion" / "p2", hu_volume(3))
    folder = load_data(str(tmp_path / "set"))
    for z in (_zip(tmp_path / "set", tmp_path / "a.zip"), _zip(tmp_path / "set", tmp_path / "b.zip", "set/")):
        data = load_data(str(z))  # b.zip: everything under one folder, read as that folder
        assert data.classes == ["healthy", "lesion"] and data.y.tolist() == [0, 0, 1, 1, 1]
        torch.testing.assert_close(data.x, folder.x)
        assert data.notes[0].startswith(f"{z}:") or data.notes[0].startswith(f"{z.name}:"), data.notes[0]
        assert "gankit-scans-" not in " ".join(data.notes)


def test_a_bad_scan_in_a_zip_is_one_line_naming_the_zip(tmp_path):
    from gankit.data import load_data

    write_series(tmp_path / "mixed", hu_volume(1))
    write_series(tmp_path / "other", hu_volume(1))
    (tmp_path / "other" / "im1.dcm").rename(tmp_path / "mixed" / "im9.dcm")
    z = _zip(tmp_path / "mixed", tmp_path / "m.zip", "p/")
    with pytest.raises(GankitError) as e:
        load_data(str(z))
    msg = str(e.value)
    assert msg.startswith(str(z)) and "mixed DICOM series" in msg and "gankit-scans-" not in msg and "\n" not in msg


def test_repair_fills_the_same_box_in_every_slice_of_a_series(tmp_path):
    """An inpainting run (untrained) on a series: outside the box every slice comes back as it went in."""
    from gankit.tasks.inpaint.infer import repair_path

    cfg = gankit.load_config("inpaint", overrides=["model.g_width=4", "device=cpu"])
    meta = {"name": "t", "kind": "image", "shape": [1, 32, 32], "channels": 1, "scale": 1.0, "classes": None}
    torch.manual_seed(0)
    run = Run.for_task("inpaint")(directory=Path("."), config=cfg, data_meta=meta, step=0, device=torch.device("cpu"),
                                  ema=False, task="inpaint", nets=get_task("inpaint").inference_nets(cfg, meta))
    vol = hu_volume(2)
    write_series(tmp_path / "ct", vol)
    r = repair_path(run, tmp_path / "ct", tmp_path / "o", box=(4, 4, 8, 8))
    assert r["kind"] == "scan" and r["n"] == 2 and r["method"] == "learned"
    out = medical.read_scan(tmp_path / "o").values
    keep = np.ones((32, 32), bool)
    keep[4:12, 4:12] = False
    np.testing.assert_allclose(out[:, keep], _expected(vol, lambda a: a)[:, keep], atol=0.51)
    with pytest.raises(GankitError, match="--show: not for a scan"):
        repair_path(run, tmp_path / "ct", tmp_path / "o2", box=(4, 4, 8, 8), show=True)
