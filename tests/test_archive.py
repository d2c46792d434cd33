"""Reading zips and folders of images in place (gankit.data.archive): stylegan2-ada-pytorch's
layout, gankit's record and its hash, and the one-line refusals of zips that are not datasets."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data import load_data
from gankit.data.archive import ImageArchive, hash_zip, verify
from gankit.data.files import load_folder
from gankit.errors import GankitError


def png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a if a.shape[2] == 3 else a[:, :, 0]).save(b, "PNG")
    return b.getvalue()


def images(n: int, size: int = 8, channels: int = 3, seed: int = 0) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    return [g.integers(0, 256, (size, size, channels), dtype=np.uint8) for _ in range(n)]


def make_zip(path, n=20, size=8, channels=3, classes=3, labels=True, record=None, extra=None, shuffle=True):
    """A zip as dataset_tool.py writes it (names 00000/img00000000.png, dataset.json labels i % classes),
    entries written in a scrambled order (readers must sort); returns the images in name order."""
    arrays = images(n, size, channels)
    names = [f"{i // 10:05d}/img{i:08d}.png" for i in range(n)]
    order = np.random.default_rng(1).permutation(n) if shuffle else range(n)
    meta = {"labels": [[names[i], i % classes] for i in range(n)] if labels else None}
    with zipfile.ZipFile(path, "w") as z:
        for i in order:
            z.writestr(names[i], png(arrays[i]))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        if record is not None:
            meta["gankit"] = record
        if labels is not None:
            z.writestr("dataset.json", json.dumps(meta))
    return arrays


def test_zip_reads_in_name_order_with_labels(tmp_path):
    arrays = make_zip(tmp_path / "d.zip", n=23, extra={"README.txt": b"hi"})
    a = ImageArchive(tmp_path / "d.zip")
    assert len(a) == 23 and a.shape == (3, 8, 8) and a.skipped == 1
    assert a.names == sorted(a.names)
    assert a.labels.tolist() == [i % 3 for i in range(23)] and a.classes == ["0", "1", "2"]
    for i in (0, 7, 22):
        assert torch.equal(a.read(i), torch.from_numpy(arrays[i]).permute(2, 0, 1))
    b = pickle.loads(pickle.dumps(a))  # what a DataLoader worker receives: it opens the zip itself
    assert torch.equal(b.read(5), a.read(5))
    data = load_data(str(tmp_path / "d.zip"))  # resident: decoded whole
    assert data.shape == (3, 8, 8) and torch.equal(data.x[22], a.read(22))
    assert data.y.tolist() == a.labels.tolist() and data.notes == ["passed over 1 non-image entries"]


def test_zip_without_dataset_json_is_unlabelled_and_grey_stays_grey(tmp_path):
    make_zip(tmp_path / "d.zip", n=5, channels=1, labels=None)
    a = ImageArchive(tmp_path / "d.zip")
    assert a.labels is None and a.classes is None and a.shape == (1, 8, 8)
    assert load_data(str(tmp_path / "d.zip")).y is None


def test_gankit_record_names_classes_and_its_hash_verifies(tmp_path):
    path = tmp_path / "d.zip"
    make_zip(path, n=6, classes=2)
    digest = hash_zip(path)
    record = {"version": 1, "count": 6, "resolution": 8, "channels": 3, "classes": ["cat", "dog"],
              "source": "pets/", "transform": "center-crop", "sha256": digest, "skipped": [], "converted": 0}
    make_zip(path, n=6, classes=2, record=record)
    a = ImageArchive(path)
    assert a.classes == ["cat", "dog"] and a.info["transform"] == "center-crop"
    assert hash_zip(path) == digest  # dataset.json is outside the hash
    assert verify(path) is True
    # by hand: sha256 over (name, NUL, bytes) of the images in name order
    import hashlib
    h = hashlib.sha256()
    with zipfile.ZipFile(path) as z:
        for n in sorted(x for x in z.namelist() if x.endswith(".png")):
            h.update(n.encode() + b"\0" + z.read(n))
    assert h.hexdigest() == digest
    # one image changed: the record no longer matches
    other = tmp_path / "e.zip"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(other, "w") as w:
        for n in z.namelist():
            w.writestr(n, png(images(1, seed=9)[0]) if n == "00000/img00000003.png" else z.read(n))
    assert verify(other) is False
    make_zip(tmp_path / "plain.zip", n=3)
    assert verify(tmp_path / "plain.zip") is None


def test_data_info_reads_a_zip_in_place(tmp_path, capsys):
    path = tmp_path / "d.zip"
    make_zip(path, n=6, classes=2)
    make_zip(path, n=6, classes=2, record={"count": 6, "resolution": 8, "channels": 3, "classes": ["a", "b"],
                                           "source": "src/", "transform": "pad", "sha256": hash_zip(path)})
    assert main(["data", "info", str(path), "--preview", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "count:    6" in out and "(3, 8, 8)" in out and "classes:  2 (a:3, b:3)" in out
    assert "fit:      pad" in out and "origin:   src/" in out and "(verified)" in out
    assert (tmp_path / "p.png").exists()


@pytest.mark.parametrize("case, message", [
    ("no images", "not an image dataset: no .png"),
    ("unknown file", "labels 1 files not in the zip (00000/ghost.png)"),
    ("missing label", "has no label for 1 of 4 images (00000/img00000003.png)"),
    ("float label", "label of '00000/img00000000.png' is 1.5; expected an integer class >= 0"),
    ("not a zip", "not a readable zip"),
])
def test_bad_zips_are_one_line_errors_naming_the_file(tmp_path, case, message):
    path = tmp_path / "d.zip"
    names = [f"00000/img{i:08d}.png" for i in range(4)]
    labels = [[n, 0] for n in names]
    if case == "no images":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "x")
    elif case == "not a zip":
        path.write_bytes(b"PK but not really")
    else:
        if case == "unknown file":
            labels.append(["00000/ghost.png", 1])
        elif case == "missing label":
            labels = labels[:3]
        else:
            labels[0][1] = 1.5
        with zipfile.ZipFile(path, "w") as z:
            for n, a in zip(names, images(4)):
                z.writestr(n, png(a))
            z.writestr("dataset.json", json.dumps({"labels": labels}))
    with pytest.raises(GankitError) as e:
        ImageArchive(path)
    assert str(path) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_mixed_sizes_are_refused_naming_the_image(tmp_path):
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.png", png(images(1, 8)[0]))
        z.writestr("b.png", png(images(1, 10)[0]))
    with pytest.raises(GankitError, match=r"d.zip:b.png: image is 10x10, the dataset's others 8x8"):
        load_data(str(path))


def test_folder_reader_follows_the_folder_loader(tmp_path):
    arrays = images(6, seed=3)
    for i, a in enumerate(arrays):
        d = tmp_path / "f" / ("cats" if i % 2 else "dogs")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i}.png")
    a = ImageArchive(tmp_path / "f")
    ref = load_folder(tmp_path / "f", "f")
    assert a.classes == ref.classes == ["cats", "dogs"] and a.labels.tolist() == ref.y.tolist()
    assert torch.equal(torch.stack([a.read(i) for i in range(len(a))]), ref.x)


def test_zip_without_dataset_json_is_labelled_as_the_tool_reads_it(tmp_path):
    """No dataset.json: class subfolders are the labels (a zipped folder's top folder aside), as
    `gankit dataset` reads the same zip, and a loose image beside class folders is refused."""
    def png(v):
        b = io.BytesIO()
        Image.fromarray(np.full((4, 4), v, np.uint8)).save(b, "PNG")
        return b.getvalue()

    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, v in (("top/cat/a.png", 1), ("top/cat/b.png", 2), ("top/dog/c.png", 3)):
            z.writestr(name, png(v))
    a = ImageArchive(path)
    assert a.classes == ["cat", "dog"] and a.labels.tolist() == [0, 0, 1]
    from gankit.data.tool import make_dataset

    make_dataset(path, tmp_path / "out.zip")
    b = ImageArchive(tmp_path / "out.zip")
    assert b.classes == a.classes and b.labels.tolist() == a.labels.tolist()
    with zipfile.ZipFile(tmp_path / "loose.zip", "w") as z:
        z.writestr("cat/a.png", png(1))
        z.writestr("b.png", png(2))
    with pytest.raises(GankitError, match="b.png sits at the top"):
        ImageArchive(tmp_path / "loose.zip")
