"""Two-domain data for translation: edges2mnist, mnist2mnistm, the folder layouts, bad input."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from gankit.data import pairs, photos
from gankit.data.mnist import load_mnist
from gankit.data.pairs import PairedData, edge_map, load_pairs, require_paired
from gankit.errors import GankitError


def _img(path, size=(8, 8), value=0, mode="L"):
    """A flat image of PIL size (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(path)


# -- photos ----------------------------------------------------------------------------------

def test_photo_split_is_disjoint_and_loads_offline():
    train, test = photos.PHOTO_SPLIT["train"], photos.PHOTO_SPLIT["test"]
    assert not set(train) & set(test)
    loaded = photos.load_photos("test")
    assert len(loaded) == len(test)
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in loaded)
    colour = photos.load_photos("test", colour_only=True)
    assert len(colour) == 3 and all((p[..., 0] != p[..., 1]).any() for p in colour)
    with pytest.raises(GankitError, match="unknown photo split 'val'"):
        photos.load_photos("val")


def test_photos_without_scikit_image_say_how_to_install(monkeypatch):
    photos._photo.cache_clear()
    monkeypatch.setitem(sys.modules, "skimage.data", None)  # import skimage.data now fails
    try:
        with pytest.raises(GankitError, match="pip install scikit-image"):
            photos.load_photos("train")
    finally:
        photos._photo.cache_clear()


# -- edges2mnist -----------------------------------------------------------------------------

def test_edge_threshold_is_half_a_full_step():
    # A vertical step of height v: interior Sobel gx = 4 v, so the edge appears from v = 128 (512 >= 510).
    for v, edge in ((127, 0), (128, 255)):
        x = np.zeros((1, 1, 5, 6), np.uint8)
        x[..., 3:] = v
        e = edge_map(x)
        assert e[0, 0, 2, 2] == e[0, 0, 2, 3] == edge
        assert e[0, 0, 2, 0] == 0 and e[0, 0, 2, 1] == 0  # flat region: no edge


def test_edges2mnist_pairs_each_digit_with_its_edges():
    d = load_pairs("edges2mnist:test")
    x, y = load_mnist("test")
    assert d.paired and d.name == "edges2mnist:test"
    assert d.a.shape == d.b.shape == (10000, 1, 28, 28) and d.a.dtype == torch.uint8
    assert set(d.a.unique().tolist()) == {0, 255}
    assert torch.equal(d.b, torch.from_numpy(x)) and torch.equal(d.y_a, d.y_b) and d.y_a.tolist() == y.tolist()
    # The edge map of b[i], recomputed with scipy's Sobel (zero padding), is a[i].
    for i in (0, 1, 4321, 9999):
        digit = x[i, 0].astype(np.float64)
        gx, gy = ndimage.sobel(digit, axis=1, mode="constant"), ndimage.sobel(digit, axis=0, mode="constant")
        want = np.where(gx ** 2 + gy ** 2 >= 510 ** 2, 255, 0)
        assert np.array_equal(d.a[i, 0].numpy(), want)
    assert load_pairs("edges2mnist").a.shape == (60000, 1, 28, 28)


# -- mnist2mnistm ----------------------------------------------------------------------------

def test_mnistm_blend_by_hand():
    photo = np.zeros((3, 3, 3), np.uint8)
    photo[..., 0] = [[0, 1, 2], [10, 11, 12], [20, 21, 22]]
    photo[..., 1], photo[..., 2] = 100, 200
    digit = np.array([[[[0, 255], [50, 100]]]], np.uint8)  # (1, 1, 2, 2)
    b = pairs.mnistm_blend(digit, [photo], np.array([0]), np.array([1]), np.array([0]))
    assert b.shape == (1, 3, 2, 2) and b.dtype == np.uint8
    assert b[0].tolist() == [[[10, 244], [30, 79]], [[100, 155], [50, 0]], [[200, 55], [150, 100]]]


def test_mnist2mnistm_domains_are_disjoint_and_blended(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs, "cache_dir", lambda: tmp_path)
    d = load_pairs("mnist2mnistm:test")
    x, y = load_mnist("test")
    ia, ib = pairs.mnistm_halves(len(x))
    assert not d.paired and not set(ia.tolist()) & set(ib.tolist()) and len(ia) + len(ib) == 10000
    assert d.a.shape == (5000, 1, 28, 28) and d.b.shape == (5000, 3, 28, 28)
    assert torch.equal(d.a, torch.from_numpy(x[ia]))
    assert d.y_a.tolist() == y[ia].tolist() and d.y_b.tolist() == y[ib].tolist()
    # Each B image is |crop - digit| of B's own digit x[ib[k]], on a held-out photo.
    held_out = photos.load_photos("test", colour_only=True)
    which, top, left = pairs.mnistm_draws(5000, held_out, pairs.MNISTM_SEED)
    assert len(set(which.tolist())) == len(held_out)  # every texture is used
    for k in (0, 1, 2500, 4999):
        crop = held_out[which[k]][top[k]:top[k] + 28, left[k]:left[k] + 28].astype(int)  # (28, 28, 3)
        want = np.abs(crop - x[ib[k], 0][:, :, None].astype(int)).transpose(2, 0, 1)
        assert np.array_equal(d.b[k].numpy(), want)
    # Generated once, cached, and the same when read back.
    assert len(list(tmp_path.glob("mnistm-test-*.npz"))) == 1
    assert torch.equal(load_pairs("mnist2mnistm", split="test").b, d.b)


# -- folders ---------------------------------------------------------------------------------

def test_paired_folders_match_by_name(tmp_path):
    for i, stem in enumerate(("c", "a", "b")):
        _img(tmp_path / "A" / f"{stem}.png", value=10 * i)
        _img(tmp_path / "B" / f"{stem}.bmp", value=10 * i + 1, mode="RGB")
        _img(tmp_path / "test" / "A" / f"{stem}.png", value=5)
        _img(tmp_path / "test" / "B" / f"{stem}.png", value=6)
    d = load_pairs(str(tmp_path))
    assert d.paired and d.a.shape == (3, 1, 8, 8) and d.b.shape == (3, 3, 8, 8) and d.y_a is None
    assert (d.b[:, 0, 0, 0] - d.a[:, 0, 0, 0]).tolist() == [1, 1, 1]  # b[i] is a[i]'s partner
    t = load_pairs(str(tmp_path), split="test")
    assert set(t.a.unique().tolist()) == {5} and set(t.b.unique().tolist()) == {6}


def test_side_by_side_images_are_cut_in_the_middle(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            im = np.zeros((8, 16, 3), np.uint8)
            im[:, :8], im[:, 8:] = (30, 40, 50), 200 + i  # A left, B right
            Image.fromarray(im).save(tmp_path / split / f"{i}.png")
    d = load_pairs(str(tmp_path))
    assert d.paired and d.a.shape == d.b.shape == (3, 3, 8, 8)
    assert d.a[:, :, 0, 0].tolist() == [[30, 40, 50]] * 3 and d.b[:, 0, 0, 0].tolist() == [200, 201, 202]
    assert len(load_pairs(str(tmp_path), split="test").a) == 2
    r = load_pairs(str(tmp_path), resolution=4)
    assert r.a.shape == (3, 3, 4, 4) and "resized A 8x8 -> 4x4" in r.notes


def test_flat_side_by_side_folder_is_train(tmp_path):
    _img(tmp_path / "x.png", size=(12, 6), value=9)
    _img(tmp_path / "test" / "y.png", size=(12, 6))  # not part of train
    assert load_pairs(str(tmp_path)).a.shape == (1, 1, 6, 6)


def test_unpaired_folders(tmp_path):
    for i in range(3):
        _img(tmp_path / "trainA" / f"{i}.png", value=1)
    for i in range(5):
        _img(tmp_path / "trainB" / f"x{i}.jpg", size=(12, 12), value=200, mode="RGB")
    d = load_pairs(str(tmp_path))
    assert not d.paired and d.a.shape == (3, 1, 8, 8) and d.b.shape == (5, 3, 8, 8)
    assert "resized B 12x12 -> 8x8 to match A" in d.notes
    assert d.meta() == {"name": str(tmp_path), "paired": False, "shape_a": [1, 8, 8], "shape_b": [3, 8, 8],
                        "count_a": 3, "count_b": 5}
    with pytest.raises(GankitError, match=r"\(trainA/ and trainB/\); pix2pix needs paired data"):
        require_paired(d, "pix2pix")
    with pytest.raises(GankitError, match="no test data: expected testA/"):
        load_pairs(str(tmp_path), split="test")


def test_require_paired_passes_paired_data():
    require_paired(PairedData(torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
                              torch.zeros(2, 3, 4, 4, dtype=torch.uint8), True, "x"), "pix2pix")
    with pytest.raises(GankitError, match="mnist2mnistm: holds unpaired domains"):
        require_paired(PairedData(torch.zeros(2, 1, 4, 4), torch.zeros(3, 3, 4, 4), False, "mnist2mnistm"), "pix2pix")


def test_unreadable_pair_is_dropped_with_a_note(tmp_path):
    for stem in "abcd":
        _img(tmp_path / "A" / f"{stem}.png")
        _img(tmp_path / "B" / f"{stem}.png")
    (tmp_path / "B" / "c.png").write_bytes(b"not a png")
    d = load_pairs(str(tmp_path))
    assert len(d.a) == len(d.b) == 3
    assert d.notes == ["skipped 1 unreadable images (B/c.png); their pairs were dropped"]
    with pytest.raises(GankitError, match=r"B/c\.png: corrupt or truncated image"):
        load_pairs(str(tmp_path), strict=True)


# -- bad input -------------------------------------------------------------------------------

def test_unknown_sources():
    with pytest.raises(GankitError, match="unknown paired data source 'cifar'; expected edges2mnist"):
        load_pairs("cifar")
    with pytest.raises(GankitError, match="edges2mnist:val: unknown split 'val'"):
        load_pairs("edges2mnist:val")
    with pytest.raises(GankitError, match="nope/x: no such folder"):
        load_pairs("nope/x")


def test_unmatched_names(tmp_path):
    for stem in "abc":
        _img(tmp_path / "A" / f"{stem}.png")
    for stem in "ad":
        _img(tmp_path / "B" / f"{stem}.png")
    with pytest.raises(GankitError, match=r"2 in A/ have no match in B/ \(b, c\), 1 in B/ have none in A/ \(d\)"):
        load_pairs(str(tmp_path))


def test_pair_of_two_sizes(tmp_path):
    _img(tmp_path / "A" / "x.png", size=(8, 8))
    _img(tmp_path / "B" / "x.png", size=(10, 8))
    with pytest.raises(GankitError, match=r"A/x\.png: is 8x8 but its pair .*B/x\.png is 10x8"):
        load_pairs(str(tmp_path))


def test_duplicate_stems(tmp_path):
    for name in ("x.png", "x.jpg"):
        _img(tmp_path / "A" / name)
        _img(tmp_path / "B" / name)
    with pytest.raises(GankitError, match="x.jpg and x.png share the name 'x'"):
        load_pairs(str(tmp_path))


@pytest.mark.parametrize("size", [(15, 8), (20, 8)])
def test_side_by_side_of_the_wrong_width(tmp_path, size):
    _img(tmp_path / "train" / "a.png", size=(16, 8))
    _img(tmp_path / "train" / "bad.png", size=size)
    with pytest.raises(GankitError, match=rf"bad\.png: is {size[0]}x8 \(width x height\).*width = 2 x height"):
        load_pairs(str(tmp_path))


def test_empty_or_missing_domain(tmp_path):
    (tmp_path / "trainA").mkdir()
    _img(tmp_path / "trainB" / "0.png")
    with pytest.raises(GankitError, match="trainA: no images found"):
        load_pairs(str(tmp_path))
    (tmp_path / "trainA").rmdir()
    (tmp_path / "B").mkdir()
    with pytest.raises(GankitError, match="trainA: no such folder, but trainB/ is there"):
        load_pairs(str(tmp_path))
    with pytest.raises(GankitError, match=r"B: no train data \(the folder is empty\): expected trainA/"):
        load_pairs(str(tmp_path / "B"))


def test_mostly_unreadable_side_by_side(tmp_path):
    _img(tmp_path / "train" / "a.png", size=(16, 8))
    for name in ("b.png", "c.jpg"):
        (tmp_path / "train" / name).write_bytes(b"junk")
    with pytest.raises(GankitError, match=r"2 of 3 images are unreadable \(train/b\.png, train/c\.jpg\)"):
        load_pairs(str(tmp_path))
