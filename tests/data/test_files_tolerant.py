"""A folder of images with a few unreadable files: skipped with one note, an error when `strict`
or when most of the folder is unreadable."""

import numpy as np
import pytest
from PIL import Image

from gankit.data import load_data
from gankit.errors import GankitError


def _good(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def _truncated(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header decodes, the pixels do not


def _folder(root, good, bad):
    for i in range(good):
        _good(root / f"g{i:02d}.png", value=i)
    for i in range(bad):
        path = root / f"b{i}.{'png' if i % 2 else 'jpg'}"
        _truncated(path) if i % 2 else path.write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_a_few_unreadable_images_are_skipped_with_one_note(tmp_path, capsys):
    d = load_data(str(_folder(tmp_path, good=20, bad=2)))
    assert d.x.shape == (20, 1, 8, 8)
    assert sorted(d.x[:, 0, 0, 0].tolist()) == list(range(20))  # exactly the good ones
    assert [n for n in d.notes if "unreadable" in n] == ["skipped 2 unreadable images (b0.jpg, b1.png)"]
    assert capsys.readouterr().err == ""  # the loader reports through notes, not warn()


def test_many_unreadable_names_the_first_three(tmp_path):
    d = load_data(str(_folder(tmp_path, good=10, bad=4)))
    assert len(d) == 10
    assert "skipped 4 unreadable images (first: b0.jpg, b1.png, b2.jpg)" in d.notes


def test_strict_raises_on_the_first_unreadable_file(tmp_path):
    root = _folder(tmp_path, good=20, bad=2)
    with pytest.raises(GankitError, match=r"b0\.jpg: corrupt or truncated image"):
        load_data(str(root), strict=True)


def test_mostly_unreadable_folder_is_an_error(tmp_path):
    with pytest.raises(GankitError, match=r"5 of 8 images are unreadable \(first: b0.jpg, b1.png, b2.jpg\)"):
        load_data(str(_folder(tmp_path, good=3, bad=5)))


def test_exactly_half_unreadable_still_loads(tmp_path):
    d = load_data(str(_folder(tmp_path, good=4, bad=4)))
    assert len(d) == 4 and any(n.startswith("skipped 4 unreadable images") for n in d.notes)


def test_a_class_left_without_readable_images_is_dropped(tmp_path):
    for i in range(3):
        _good(tmp_path / "cat" / f"{i}.png", value=7)
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "0.png").write_bytes(b"garbage")
    d = load_data(str(tmp_path))
    assert d.classes == ["cat"] and d.y.tolist() == [0, 0, 0]
    assert "skipped 1 unreadable images (dog/0.png)" in d.notes
