"""Medical file formats (gankit.media.medical): DICOM series and NIfTI volumes made on the fly,
read as slices in their units, windowed, written back, and read as training data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom  # the `medical` extra, which the Makefile installs: these tests run, never skip
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from gankit.data import load_data
from gankit.data.inpaint import load_inpaint
from gankit.errors import GankitError
from gankit.media import medical
from gankit.media.images import read_image

N = 32
SLOPE, INTERCEPT = 1.0, -1024.0
GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "FrameOfReferenceUID")


def hu_volume(slices: int = 4) -> np.ndarray:
    """(S, N, N) Hounsfield values: air outside a disc of water with a bone-like spot, a ramp
    along the slices so that their order shows."""
    yy, xx = np.mgrid[:N, :N] - N / 2
    vol = np.full((slices, N, N), -1000.0)
    for k in range(slices):
        vol[k][xx ** 2 + yy ** 2 < (N / 3) ** 2] = 10.0 * k
        vol[k][(xx - 3) ** 2 + yy ** 2 < 9] = 700.0
    return vol


def ct_dataset(hu: np.ndarray, z: float, number: int, series: str, frame: str, window=True) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", series, frame
    ds.Modality, ds.PatientName, ds.SeriesDescription = "CT", "Phantom^Test", "test series"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [-16.0, -16.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 2.5
    ds.Rows = ds.Columns = N
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
    ds.LargestImagePixelValue = int((hu.max() - INTERCEPT) / SLOPE)
    if window:
        ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = np.round((hu - INTERCEPT) / SLOPE).astype("<i2").tobytes()
    return ds


def write_series(folder: Path, vol: np.ndarray, series: str | None = None, window=True) -> list[Path]:
    """Files named against the slice order (instance numbers and names reversed, positions not),
    so that reading must sort by position."""
    folder.mkdir(parents=True, exist_ok=True)
    series, frame, paths = series or generate_uid(), generate_uid(), []
    for k, hu in enumerate(vol):
        p = folder / f"im{len(vol) - k}.dcm"
        ct_dataset(hu, z=2.5 * k - 40, number=len(vol) - k, series=series, frame=frame,
                   window=window).save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def test_dicom_series_reads_in_order_in_hounsfield_units(tmp_path):
    vol = hu_volume()
    write_series(tmp_path / "ct", vol)
    scan = medical.read_scan(tmp_path / "ct")
    np.testing.assert_array_equal(scan.values, vol.astype(np.float32))  # sorted by position, rescaled
    assert [p.name for p in scan.files] == ["im4.dcm", "im3.dcm", "im2.dcm", "im1.dcm"]
    assert "Hounsfield" in scan.units and "ImagePositionPatient" in scan.order
    assert scan.file_window == (40.0, 400.0)


def test_windows_map_hounsfield_to_unit_range(tmp_path):
    write_series(tmp_path / "ct", hu_volume())
    scan = medical.read_scan(tmp_path / "ct")
    c, w, note = medical.window_of(scan, "file")
    assert (c, w) == (40.0, 400.0) and "WindowCenter/Width" in note and "-160..240" in note
    # soft tissue 40/400: -160 HU -> 0, 240 -> 1; water (0 HU) -> 0.4; air and bone clipped
    np.testing.assert_allclose(medical.apply_window(np.array([-1000, -160, 0, 240, 700]), c, w), [0, 0, 0.4, 1, 1])
    assert medical.window_of(scan, "lung")[:2] == (-600.0, 1500.0)
    assert medical.window_of(scan, "-500,1000")[:2] == (-500.0, 1000.0)
    lo, hi = np.percentile(scan.values, medical.AUTO_PERCENTILES)
    c, w, note = medical.window_of(scan, "auto")
    assert c == pytest.approx((lo + hi) / 2) and w == pytest.approx(hi - lo) and "auto" in note
    with pytest.raises(GankitError, match="window 'liver'"):
        medical.window_of(scan, "liver")
    images = medical.apply_window(scan.values, 40, 400)
    np.testing.assert_allclose(medical.unwindow(images, 40, 400), np.clip(scan.values, -160, 240), atol=1e-4)


def test_dicom_round_trip_keeps_geometry_and_values_with_new_uids(tmp_path):
    src = write_series(tmp_path / "ct", hu_volume())
    scan = medical.read_scan(tmp_path / "ct")
    out = medical.write_dicom(scan.values + 0.4, scan, tmp_path / "out")  # +0.4 HU rounds away
    assert sorted(p.name for p in out) == sorted(p.name for p in src)
    back = medical.read_scan(tmp_path / "out")
    np.testing.assert_array_equal(back.values, scan.values)
    uids = set()
    for a, b in zip(scan.headers, back.headers):
        for tag in GEOMETRY:
            assert a.get(tag) == b.get(tag), tag
        assert b.SOPInstanceUID != a.SOPInstanceUID and b.SeriesInstanceUID != a.SeriesInstanceUID
        assert b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID
        assert "gankit" in b.SeriesDescription and b.ImageType[0] == "DERIVED"
        assert "LargestImagePixelValue" in a and "LargestImagePixelValue" not in b  # it described the old pixels
        uids.add(b.SeriesInstanceUID)
    assert len(uids) == 1  # one new series
    # a compressed source (RLE, which pydicom decodes itself) comes back uncompressed, values equal
    for p in write_series(tmp_path / "rle", hu_volume(2)):
        ds = pydicom.dcmread(p)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(p, enforce_file_format=True)
    rle = medical.read_scan(tmp_path / "rle")
    medical.write_dicom(rle.values, rle, tmp_path / "plain")
    back = medical.read_scan(tmp_path / "plain")
    assert back.headers[0].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(back.values, rle.values)
    # values past the stored type's range are clipped to it, not wrapped
    big = medical.write_dicom(np.full_like(scan.values, 1e6), scan, tmp_path / "big")
    assert pydicom.dcmread(big[0]).pixel_array.max() == 32767


def test_nifti_slices_along_an_axis_and_round_trips_with_its_affine(tmp_path):
    vol = np.random.default_rng(0).normal(size=(N, N, 5)).astype(np.float32)
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    affine[:3, 3] = [-10, 5, 2]
    nib.save(nib.Nifti1Image(vol, affine), tmp_path / "v.nii.gz")
    scan = medical.read_scan(tmp_path / "v.nii.gz")
    assert scan.values.shape == (5, N, N) and "does not guarantee units" in scan.units
    np.testing.assert_array_equal(scan.values[3], vol[:, :, 3])
    assert medical.read_scan(tmp_path / "v.nii.gz", axis=0).values.shape == (N, N, 5)
    medical.write_nifti(scan.values * 2, scan, tmp_path / "o.nii.gz")
    back = nib.load(tmp_path / "o.nii.gz")
    np.testing.assert_array_equal(back.affine, scan.affine)  # the source's, as stored (float32 in the file)
    np.testing.assert_allclose(back.affine, affine, rtol=1e-6)
    assert back.header.get_sform(coded=True)[1] == scan.header.get_sform(coded=True)[1]
    np.testing.assert_allclose(np.asanyarray(back.dataobj), vol * 2)
    # 4-D: a volume picked; out of range and more than 4 dimensions refused, naming the file
    nib.save(nib.Nifti1Image(np.stack([vol, vol + 1], -1), affine), tmp_path / "t.nii")
    np.testing.assert_array_equal(medical.read_scan(tmp_path / "t.nii", volume=1).values[0], vol[:, :, 0] + 1)
    with pytest.raises(GankitError, match=r"t\.nii: volume 2 of a 4-D NIfTI with 2 volumes"):
        medical.read_scan(tmp_path / "t.nii", volume=2)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2, 2), np.float32), affine), tmp_path / "five.nii")
    with pytest.raises(GankitError, match=r"five\.nii: NIfTI with 5 dimensions"):
        medical.read_scan(tmp_path / "five.nii")


def test_pngs_are_the_windowed_slices(tmp_path):
    write_series(tmp_path / "ct", hu_volume())
    scan = medical.read_scan(tmp_path / "ct")
    images = medical.apply_window(scan.values, *medical.window_of(scan)[:2])
    paths = medical.write_pngs(images, tmp_path / "png", scan.slice_names())
    assert [p.name for p in paths] == ["im4.png", "im3.png", "im2.png", "im1.png"]
    np.testing.assert_array_equal(read_image(paths[1])[:, :, 0], medical.as_uint8(images[1]))
    nib.save(nib.Nifti1Image(np.zeros((N, N, 2), np.float32), np.eye(4)), tmp_path / "v.nii.gz")
    vol = medical.read_scan(tmp_path / "v.nii.gz")
    assert [p.name for p in medical.write_pngs(vol.values, tmp_path / "png", vol.slice_names())] == ["v_0.png", "v_1.png"]


def test_a_folder_of_scans_loads_as_greyscale_training_images(tmp_path):
    write_series(tmp_path / "scans" / "lesion" / "p1", hu_volume(4))
    write_series(tmp_path / "scans" / "healthy" / "p2", hu_volume(3), window=False)
    data = load_data(str(tmp_path / "scans"), load="auto")  # a folder of scans never streams
    assert data.x.shape == (7, 1, N, N) and data.classes == ["healthy", "lesion"]
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert any(n.startswith("scans/healthy/p2: 3 slices") and "auto" in n for n in data.notes)
    assert any(n.startswith("scans/lesion/p1: 4 slices") and "WindowCenter/Width" in n for n in data.notes)
    want = medical.as_uint8(medical.apply_window(hu_volume(4), 40, 400))
    np.testing.assert_array_equal(data.x[3:, 0].numpy(), want)
    # one NIfTI file as --data
    nib.save(nib.Nifti1Image(np.linspace(0, 1, N * N * 2, dtype=np.float32).reshape(N, N, 2), np.eye(4)),
             tmp_path / "v.nii")
    assert load_data(str(tmp_path / "v.nii")).x.shape == (2, 1, N, N)


def test_the_image_tasks_read_a_folder_of_scans(tmp_path):
    write_series(tmp_path / "scans", hu_volume(4))
    write_series(tmp_path / "scans" / "test", hu_volume(2))
    train = load_inpaint(str(tmp_path / "scans"), "train", patch=16)
    assert train.shape == (1, 16, 16) and "im1.dcm" in train.images
    assert len(load_inpaint(str(tmp_path / "scans"), "test", patch=16).images) == 2


def test_bad_input_is_one_line_naming_the_file(tmp_path):
    write_series(tmp_path / "mixed", hu_volume(2))
    ds = ct_dataset(hu_volume(1)[0], 9.0, 9, generate_uid(), generate_uid())
    ds.save_as(tmp_path / "mixed" / "other.dcm", enforce_file_format=True)
    with pytest.raises(GankitError, match=r"mixed: mixed DICOM series \(2 SeriesInstanceUIDs.*own folder") as e:
        load_data(str(tmp_path / "mixed"))
    assert "\n" not in str(e.value)
    (tmp_path / "nopix").mkdir()
    del ds.PixelData
    ds.save_as(tmp_path / "nopix" / "sr.dcm", enforce_file_format=True)
    with pytest.raises(GankitError, match=r"sr\.dcm: DICOM file without pixel data"):
        medical.read_scan(tmp_path / "nopix")
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 200)
    with pytest.raises(GankitError, match=r"bad\.dcm: unreadable DICOM file"):
        medical.read_scan(tmp_path / "bad.dcm")
    (tmp_path / "bad.nii.gz").write_bytes(b"not gzip")
    with pytest.raises(GankitError, match=r"bad\.nii\.gz: unreadable NIfTI file"):
        load_data(str(tmp_path / "bad.nii.gz"))
    write_series(tmp_path / "ct", hu_volume(2))
    scan = medical.read_scan(tmp_path / "ct")
    with pytest.raises(GankitError, match=r"out: 2 slices of 16x16 cannot go back into .*2 slices of 32x32"):
        medical.write_dicom(np.zeros((2, 16, 16)), scan, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    scan.values = scan.values[:, :, :30]
    with pytest.raises(GankitError, match=r"ct: slices are 30x32 .*reconstruction needs square slices: crop"):
        medical.check_square(scan, "reconstruction")


def test_without_the_extra_reading_says_what_to_install(tmp_path, monkeypatch):
    write_series(tmp_path / "ct", hu_volume(1))
    monkeypatch.setitem(__import__("sys").modules, "pydicom", None)  # import pydicom now raises ImportError
    with pytest.raises(GankitError, match=r"reading DICOM needs pydicom: pip install 'gankit\[medical\]'"):
        medical.read_scan(tmp_path / "ct")


def test_cli_writes_a_scan_as_pngs_through_a_named_window(tmp_path, capsys):
    from gankit.cli import main

    write_series(tmp_path / "ct", hu_volume(2))
    assert main(["data", "slices", str(tmp_path / "ct"), "--out", str(tmp_path / "png"), "--window", "bone"]) == 0
    assert "named window bone" in capsys.readouterr().out
    # bone 400/1800: -500 HU -> 0, 1300 -> 1; the first slice's water (0 HU, file im2) -> 500/1800
    got = read_image(tmp_path / "png" / "im2.png")[:, :, 0]
    assert got[N // 2, N // 2 - 6] == round(500 / 1800 * 255) and got[0, 0] == 0
