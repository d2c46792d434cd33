"""`gankit dataset` (gankit.data.tool): each source kind in, stylegan2-ada-pytorch's zip layout
out, the transforms' geometry, mode conversions, skips, the content hash, atomic writing and the
CLI's one-line errors. Tiny images throughout."""

import errno
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.data.archive import hash_zip
from gankit.data.tool import content_hash, entry_name, make_dataset
from gankit.errors import DiskError, GankitError

RNG = np.random.default_rng(0)


def rgb(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(arr_or_im, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    im.save(path)
    return path


def read(zip_path):
    """(dataset.json, {name: uint8 array}) of a dataset zip."""
    with zipfile.ZipFile(zip_path) as z:
        meta = json.loads(z.read("dataset.json"))
        images = {n: np.asarray(Image.open(io.BytesIO(z.read(n)))) for n in z.namelist() if n != "dataset.json"}
    return meta, images


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


# --- sources ---------------------------------------------------------------------------------

def test_folder_with_class_subfolders(tmp_path):
    src = tmp_path / "src"
    for cls, n in (("dog", 2), ("cat", 3)):
        for i in range(n):
            save(rgb(16, 16), src / cls / f"{i}.png")
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.png").write_bytes(b"ignored")
    r = make_dataset(src, tmp_path / "d.zip")
    meta, images = read(tmp_path / "d.zip")
    names = [entry_name(i) for i in range(5)]
    assert names[0] == "00000/img00000000.png" and entry_name(1234) == "00001/img00001234.png"
    assert sorted(images) == names
    # sorted classes: cat = 0 (3 images first, files sorted), dog = 1
    assert meta["labels"] == [[n, y] for n, y in zip(names, [0, 0, 0, 1, 1])]
    g = meta["gankit"]
    assert (g["version"], g["count"], g["resolution"], g["channels"], g["classes"]) == (1, 5, 16, 3, ["cat", "dog"])
    assert g["skipped"]["not_image"] == 1 and g["transform"] == "center-crop"
    assert all(a.shape == (16, 16, 3) for a in images.values())
    assert (r.count, r.class_counts) == (5, [3, 2])
    # the same pixels (no resize at the images' own size): cat/0.png is image 0
    np.testing.assert_array_equal(images[names[0]], np.asarray(Image.open(src / "cat" / "0.png")))


def test_read_as_stylegan2_ada_pytorch_reads_it(tmp_path):
    """Its ImageFolderDataset on a zip: every entry with an extension Pillow knows is an image,
    in sorted order; labels = dict(dataset.json's labels)[name]; one (C, H, W) for all, square."""
    src = tmp_path / "src"
    for cls in ("a", "b", "c"):
        save(rgb(12, 12), src / cls / "0.png")
    save(Image.fromarray(np.zeros((12, 12), np.uint8)), src / "c" / "1.png")  # grey among colour
    make_dataset(src, tmp_path / "d.zip", resolution=8)
    Image.init()
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        names = sorted(n for n in z.namelist() if "." + n.rsplit(".", 1)[-1].lower() in Image.EXTENSION)
        table = dict(json.loads(z.read("dataset.json"))["labels"])
        labels = np.array([table[n.replace("\\", "/")] for n in names])
        shapes = {np.asarray(Image.open(z.open(n))).transpose(2, 0, 1).shape for n in names}
    assert names == [entry_name(i) for i in range(4)] and labels.astype(np.int64).tolist() == [0, 1, 2, 2]
    assert shapes == {(3, 8, 8)}


def test_stored_uncompressed_and_reproducible(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        save(rgb(8, 8), src / f"{i}.png")
    make_dataset(src, tmp_path / "a.zip")
    make_dataset(src, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    meta, _ = read(tmp_path / "a.zip")
    assert meta["labels"] is None and meta["gankit"]["classes"] is None


def test_loose_image_beside_class_folders_is_an_error(tmp_path):
    src = tmp_path / "src"
    save(rgb(8, 8), src / "cat" / "a.png")
    save(rgb(8, 8), src / "loose.png")
    with pytest.raises(GankitError, match="loose.png"):
        make_dataset(src, tmp_path / "d.zip")
    assert files_in(tmp_path) == ["src"]


@pytest.mark.parametrize("layout", ["nhwc-uint8", "nchw-float"])
def test_npz(tmp_path, layout):
    x = RNG.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    y = np.array([2, 0, 1, 1, 0])
    if layout == "nhwc-uint8":
        np.savez(tmp_path / "a.npz", x=x, y=y)
    else:  # exact in uint8 after *255 and rounding
        np.savez(tmp_path / "a.npz", images=x.transpose(0, 3, 1, 2) / 255.0, labels=y)
    make_dataset(tmp_path / "a.npz", tmp_path / "d.zip")
    meta, images = read(tmp_path / "d.zip")
    assert [lab for _, lab in meta["labels"]] == y.tolist()
    for i in range(5):
        np.testing.assert_array_equal(images[entry_name(i)], x[i])


def test_npz_bad_keys_and_range(tmp_path):
    np.savez(tmp_path / "a.npz", pics=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(GankitError, match=r"a\.npz: has keys \['pics'\]"):
        make_dataset(tmp_path / "a.npz", tmp_path / "d.zip")
    np.savez(tmp_path / "b.npz", x=np.full((2, 8, 8), 2.0))
    with pytest.raises(GankitError, match=r"range over \[2, 2\]; expected \[0, 1\]"):
        make_dataset(tmp_path / "b.npz", tmp_path / "d.zip")


def test_zip_reencoded_keeps_labels_and_classes(tmp_path):
    src = tmp_path / "src"
    for cls in ("a", "b"):
        for i in range(2):
            save(rgb(16, 16), src / cls / f"{i}.png")
    make_dataset(src, tmp_path / "16.zip")
    r = make_dataset(tmp_path / "16.zip", tmp_path / "8.zip", resolution=8)
    meta, images = read(tmp_path / "8.zip")
    assert r.kind == "zip" and meta["gankit"]["classes"] == ["a", "b"]
    assert [lab for _, lab in meta["labels"]] == [0, 0, 1, 1]
    assert all(a.shape == (8, 8, 3) for a in images.values())


def test_zip_as_stylegan2_ada_writes_it(tmp_path):
    """dataset_tool.py's zip: PNGs under 00000/ and dataset.json without our key; labels by name."""
    path = tmp_path / "ada.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            buf = io.BytesIO()
            Image.fromarray(rgb(8, 8)).save(buf, format="png")
            z.writestr(entry_name(i), buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [[entry_name(i), 7 - i] for i in range(3)]}))
    make_dataset(path, tmp_path / "out.zip")
    meta, _ = read(tmp_path / "out.zip")
    assert meta["labels"] == [[entry_name(i), 7 - i] for i in range(3)]
    assert meta["gankit"]["classes"] is None


def test_zip_labels_that_do_not_match_the_files(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as z:
        buf = io.BytesIO()
        Image.fromarray(rgb(8, 8)).save(buf, format="png")
        z.writestr("00000/img00000000.png", buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 1], ["00000/gone.png", 0]]}))
    with pytest.raises(GankitError, match=r"bad\.zip:dataset\.json: labels 1 files that are not there \(first: 00000/gone.png\)"):
        make_dataset(path, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_zipped_folder_is_read_as_the_folder(tmp_path):
    path = tmp_path / "faces.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(2):
            buf = io.BytesIO()
            Image.fromarray(rgb(8, 8)).save(buf, format="jpeg")
            z.writestr(f"faces/{i}.jpg", buf.getvalue())
        z.writestr("__MACOSX/faces/._0.jpg", b"resource fork")
    make_dataset(path, tmp_path / "out.zip")
    meta, images = read(tmp_path / "out.zip")
    assert meta["labels"] is None and len(images) == 2  # one wrapping folder is not a class


def test_video_frames_every_k(tmp_path):
    from gankit.media.video import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, fps=10) as w:
        for i in range(6):
            w.write(np.full((16, 24, 3), 40 * i, np.uint8))
    r = make_dataset(video, tmp_path / "out.zip", resolution=8, every=2)
    meta, images = read(tmp_path / "out.zip")
    assert r.kind == "video" and r.count == 3 and meta["labels"] is None
    means = [images[entry_name(i)].mean() for i in range(3)]  # frames 0, 2, 4: levels 0, 80, 160
    np.testing.assert_allclose(means, [0, 80, 160], atol=6)


# --- transforms ------------------------------------------------------------------------------

def test_transforms_geometry(tmp_path):
    """A 40x20 picture, white in its centre 20x20 and grey elsewhere, at R = 16."""
    a = np.full((20, 40, 3), 100, np.uint8)
    a[:, 10:30] = 255
    save(a, tmp_path / "src" / "x.png")
    out = {}
    for t in ("center-crop", "center-crop-wide", "pad", "resize"):
        band = {"height": 8} if t == "center-crop-wide" else {}
        make_dataset(tmp_path / "src", tmp_path / f"{t}.zip", resolution=16, transform=t, **band)
        out[t] = read(tmp_path / f"{t}.zip")[1][entry_name(0)].astype(int)
        assert out[t].shape == (16, 16, 3), t
    assert (out["center-crop"] == 255).all()  # the centred square is the white part
    pad = out["pad"]  # 40x20 -> 16x8 in rows 4..11, black above and below
    assert (pad[:4] == 0).all() and (pad[12:] == 0).all() and (pad[4:12] > 50).all()
    wide = out["center-crop-wide"]  # a 2:1 band (16x8) from the 40x20 picture, centred on black
    assert (wide[:4] == 0).all() and (wide[12:] == 0).all() and abs(wide[4:12, 0].mean() - 100) < 8
    res = out["resize"]  # everything kept, squashed: grey edges, white middle
    assert abs(res[:, 0].mean() - 100) < 8 and (res[:, 6:10] >= 250).all()  # Lanczos rings by a level


def test_small_images_skipped_and_named(tmp_path, capsys):
    src = tmp_path / "src"
    save(rgb(32, 32), src / "big.png")
    save(rgb(10, 12), src / "tiny.png")
    assert main(["dataset", str(src), str(tmp_path / "d.zip"), "--resolution", "16", "--no-progress"]) == 0
    io_ = capsys.readouterr()
    line = next(ln for ln in io_.err.splitlines() if "tiny.png" in ln)
    assert "12x10" in line and "16x16" in line and "center-crop" in line
    assert "skipped:   too small 1" in io_.out and "written:   1 images" in io_.out
    # resize upscales it instead, and counts that
    r = make_dataset(src, tmp_path / "r.zip", resolution=16, transform="resize")
    assert r.count == 2 and r.converted["upscaled"] == 1


def test_wide_band_larger_than_the_square(tmp_path):
    save(rgb(16, 16), tmp_path / "src" / "a.png")
    with pytest.raises(GankitError, match="--height 20: larger than --resolution 16"):
        make_dataset(tmp_path / "src", tmp_path / "d.zip", transform="center-crop-wide", height=20)


# --- modes -----------------------------------------------------------------------------------

def test_mixed_modes_converted_and_counted(tmp_path):
    src = tmp_path / "src"
    save(rgb(8, 8), src / "0_rgb.png")
    save(Image.fromarray(np.full((8, 8), 77, np.uint8)), src / "1_grey.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:4, :, 3] = 255  # top half opaque, bottom transparent
    save(Image.fromarray(rgba, "RGBA"), src / "2_rgba.png")
    save(Image.fromarray(rgb(8, 8)).convert("CMYK"), src / "3_cmyk.jpg")
    save(Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)), src / "4_16bit.png")
    save(Image.fromarray(rgb(8, 8)).convert("P"), src / "5_palette.png")
    r = make_dataset(src, tmp_path / "d.zip")
    assert r.channels == 3 and r.count == 6
    assert r.converted == {"16-bit": 1, "CMYK": 1, "alpha on black": 1, "grey to RGB": 2, "palette": 1}
    _, images = read(tmp_path / "d.zip")
    np.testing.assert_array_equal(images[entry_name(1)], 77)
    composited = images[entry_name(2)]
    assert (composited[:4] == 200).all() and (composited[4:] == 0).all()
    np.testing.assert_array_equal(images[entry_name(4)], 100)  # 16-bit 25700 -> 8-bit 100

    r = make_dataset(src, tmp_path / "g.zip", channels=1)
    assert r.channels == 1 and r.converted["RGB to grey"] == 4
    assert all(a.shape == (8, 8) for a in read(tmp_path / "g.zip")[1].values())


def test_exif_orientation_applied(tmp_path):
    """A phone photo stored on its side (orientation 6: turn 90 degrees clockwise to show) comes
    out upright: its stored left half is the shown top half."""
    a = np.zeros((8, 16, 3), np.uint8)
    a[:, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "src").mkdir()
    Image.fromarray(a).save(tmp_path / "src" / "phone.png", exif=exif)
    r = make_dataset(tmp_path / "src", tmp_path / "d.zip", resolution=8, transform="resize")
    img = read(tmp_path / "d.zip")[1][entry_name(0)].astype(int)
    assert r.converted["EXIF rotation"] == 1
    assert img[:3].min() >= 250 and img[5:].max() <= 5  # top white, bottom black


def test_all_grey_defaults_to_one_channel(tmp_path):
    save(Image.fromarray(np.full((8, 8), 5, np.uint8)), tmp_path / "src" / "a.png")
    save(Image.fromarray(np.full((8, 8), 257, np.uint16)), tmp_path / "src" / "b.png")
    assert make_dataset(tmp_path / "src", tmp_path / "d.zip").channels == 1


# --- skips, hash, atomicity ------------------------------------------------------------------

def test_corrupt_file_skipped_or_refused_with_strict(tmp_path):
    src = tmp_path / "src"
    save(rgb(8, 8), src / "a.png")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    skips = []
    r = make_dataset(src, tmp_path / "d.zip", on_skip=lambda reason, line: skips.append((reason, line)))
    assert r.count == 1 and r.skipped["unreadable"] == 1
    assert skips[0][0] == "unreadable" and "b.png" in skips[0][1]
    with pytest.raises(GankitError, match=r"b\.png: corrupt.*--strict"):
        make_dataset(src, tmp_path / "s.zip", strict=True)
    assert not (tmp_path / "s.zip").exists()


def test_content_hash_recomputes_from_the_zip(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        save(rgb(8, 8), src / f"{i}.png")
    r = make_dataset(src, tmp_path / "d.zip")
    meta, _ = read(tmp_path / "d.zip")
    with zipfile.ZipFile(tmp_path / "d.zip") as z:  # the rule, spelled out by hand
        h = hashlib.sha256()
        for i in range(3):
            h.update(entry_name(i).encode() + b"\0" + z.read(entry_name(i)))
    assert meta["gankit"]["sha256"] == r.sha256 == hash_zip(tmp_path / "d.zip") == h.hexdigest()
    entries = [("a", b"1"), ("b", b"2")]
    assert content_hash(entries) != content_hash([("a", b"1"), ("b", b"3")])
    with pytest.raises(ValueError, match="ascending"):
        content_hash(entries[::-1])


def test_max_images(tmp_path):
    for i in range(5):
        save(rgb(8, 8), tmp_path / "src" / f"{i}.png")
    r = make_dataset(tmp_path / "src", tmp_path / "d.zip", max_images=2)
    assert r.count == 2 and sorted(read(tmp_path / "d.zip")[1]) == [entry_name(0), entry_name(1)]


@pytest.mark.parametrize("failure", ["disk-full", "interrupt"])
def test_nothing_left_behind_on_a_failure_mid_write(tmp_path, monkeypatch, failure):
    for i in range(4):
        save(rgb(8, 8), tmp_path / "src" / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "d.zip").write_bytes(b"the previous dataset")
    real = zipfile.ZipFile.writestr
    calls = []

    def failing(self, info, data, *a, **k):
        calls.append(info)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device") if failure == "disk-full" else KeyboardInterrupt
        return real(self, info, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(DiskError if failure == "disk-full" else KeyboardInterrupt) as e:
        make_dataset(tmp_path / "src", out / "d.zip", force=True)
    if failure == "disk-full":
        assert str(e.value).startswith(f"cannot write {out / 'd.zip'}: no space left on device")
    assert files_in(out) == ["d.zip"] and (out / "d.zip").read_bytes() == b"the previous dataset"


# --- the command line ------------------------------------------------------------------------

def test_cli_help_matches_the_tool():
    from gankit.cli import dataset as cli
    from gankit.data import tool

    assert (cli.TRANSFORMS, cli.RESOLUTIONS) == (tool.TRANSFORMS, tool.RESOLUTIONS)


def test_cli_writes_and_summarises(tmp_path, capsys):
    for i in range(2):
        save(rgb(12, 12), tmp_path / "src" / "k" / f"{i}.png")
    assert main(["dataset", str(tmp_path / "src"), str(tmp_path / "d.zip"), "--resolution", "8",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "written:   2 images, 8x8 RGB, center-crop" in out and "classes:   1 (k 2)" in out
    assert f"sha256:    {hash_zip(tmp_path / 'd.zip')}" in out


@pytest.mark.parametrize("args, message", [
    (["SRC", "d.zip", "--channels", "2"], "--channels 2: expected 1 (grey) or 3 (RGB)"),
    (["SRC", "d.zip", "--resolution", "3"], "--resolution 3: expected a square side from 4 to 4096"),
    (["SRC", "d.zip", "--resolution", "8192"], "--resolution 8192: expected a square side from 4 to 4096"),
    (["SRC", "d.zip", "--transform", "crop"], "--transform crop: expected one of center-crop, center-crop-wide"),
    (["SRC", "d.zip", "--height", "4"], "--height 4: only center-crop-wide"),
    (["SRC", "d.zip", "--every", "2"], "--every 2: keeps every K-th frame of a video"),
    (["SRC", "d.tar"], "d.tar: the output must be a .zip"),
    (["SRC", "EXISTS"], "already exists; pass --force"),
    (["missing", "d.zip"], "missing: no such file or folder"),
    (["NOTES", "d.zip"], "not a source the dataset tool reads"),
    (["EMPTYZIP", "d.zip"], "holds no images (1 other files)"),
    (["NOTZIP", "d.zip"], "junk.zip: not a readable zip archive"),
    (["UNLABELLED", "d.zip"], "dataset.json: 1 of 2 images have no label (first: 00000/img00000001.png)"),
    (["MIXED", "d.zip"], "not all one square size (found 8x6 (a.png), 8x8 (b.png)); give --resolution"),
])
def test_cli_one_line_errors(tmp_path, capsys, args, message):
    save(rgb(8, 8), tmp_path / "src" / "a.png")
    save(rgb(6, 8), tmp_path / "mixed" / "a.png")
    save(rgb(8, 8), tmp_path / "mixed" / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "exists.zip").write_bytes(b"x")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("readme.md", "no images here")
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    with zipfile.ZipFile(tmp_path / "unlabelled.zip", "w") as z:
        for i in range(2):
            buf = io.BytesIO()
            Image.fromarray(rgb(8, 8)).save(buf, format="png")
            z.writestr(entry_name(i), buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [[entry_name(0), 1]]}))
    where = {"SRC": tmp_path / "src", "NOTES": tmp_path / "notes.txt", "EMPTYZIP": tmp_path / "empty.zip",
             "MIXED": tmp_path / "mixed", "EXISTS": tmp_path / "exists.zip", "NOTZIP": tmp_path / "junk.zip",
             "UNLABELLED": tmp_path / "unlabelled.zip"}
    argv = [str(where.get(a, tmp_path / a if a.endswith((".zip", ".tar")) else a)) for a in args]
    assert main(["dataset", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: ") and message in err, err
    assert not (tmp_path / "d.zip").exists() and not list(tmp_path.glob(".*partial*"))
