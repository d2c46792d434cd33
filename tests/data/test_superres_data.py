"""Super-resolution data: MNIST, the photo split, folders, the patch pool, downscale, random patches."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import photos
from gankit.data.mnist import load_mnist
from gankit.data.superres import SRData, downscale, load_sr, patch_pool, random_patches
from gankit.errors import GankitError


def _png(path, size, seed=0, mode="RGB"):
    """A random image of PIL size (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(g.integers(0, 256, shape, dtype=np.uint8)).save(path)


def _dihedral(t):
    """The 8 flips/rotations of a (C, p, p) tensor."""
    return [torch.rot90(t, k, dims=(1, 2)).flip(2) if f else torch.rot90(t, k, dims=(1, 2))
            for f in (0, 1) for k in range(4)]


# -- MNIST -----------------------------------------------------------------------------------

def test_mnist_x4_and_x2_keep_whole_digits_and_labels():
    d = load_sr("mnist", 4, 28)
    x, y = load_mnist("train")
    assert d.hr.shape == (60000, 1, 28, 28) and d.hr.dtype == torch.uint8
    assert torch.equal(d.hr[:100], torch.from_numpy(x[:100])) and torch.equal(d.y, torch.from_numpy(y))
    assert downscale(d.hr[:5], d.scale).shape == (5, 1, 7, 7)
    t = load_sr("mnist:test", 2, 28)
    assert t.hr.shape == (10000, 1, 28, 28) and len(t.y) == 10000 and t.name == "mnist:test"
    assert downscale(t.hr[:5], t.scale).shape == (5, 1, 14, 14)
    assert t.meta() == {"name": "mnist:test", "scale": 2, "patch": 28, "channels": 1, "shape": [1, 28, 28],
                        "count": 10000, "images": 0}


def test_mnist_refuses_scale_3_and_partial_patches():
    with pytest.raises(GankitError, match="scale 3 does not divide the 28x28 digits"):
        load_sr("mnist", 3, 27)
    with pytest.raises(GankitError, match="patch 16; .* the patch is 28"):
        load_sr("mnist", 4, 16)


def test_bad_scale_patch_and_source_are_one_line_errors(tmp_path):
    with pytest.raises(GankitError, match="scale 5: expected one of 2, 3, 4"):
        load_sr("photos", 5, 40)
    with pytest.raises(GankitError, match="patch 30: .* multiple of the scale 4"):
        load_sr("photos", 4, 30)
    with pytest.raises(GankitError, match="unknown super-resolution data source 'imagenet'"):
        load_sr("imagenet", 2, 32)
    with pytest.raises(GankitError, match="unknown split 'val'"):
        load_sr("photos:val", 2, 32)
    with pytest.raises(GankitError, match="photo 'page'.* smaller than the 192x192 HR patch; use a patch <= 172"):
        load_sr("photos", 4, 192)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="empty: no images found"):
        load_sr(str(tmp_path / "empty"), 2, 32)


# -- photos ----------------------------------------------------------------------------------

def _occurs(patch: np.ndarray, photo: np.ndarray) -> bool:
    """Whether (p, p, 3) `patch` is a window of (H, W, 3) `photo`."""
    p = patch.shape[0]
    h, w = photo.shape[0] - p + 1, photo.shape[1] - p + 1
    if h <= 0 or w <= 0:
        return False
    hit = (photo[:h, :w] == patch[0, 0]).all(-1) & (photo[p - 1:, p - 1:] == patch[-1, -1]).all(-1)
    return any(np.array_equal(photo[i:i + p, j:j + p], patch) for i, j in zip(*np.nonzero(hit)))


def test_photos_train_and_test_use_disjoint_photos():
    train = load_sr("photos", 2, 16, pool=64)
    test = load_sr("photos:test", 2, 16)
    assert train.images == list(photos.PHOTO_SPLIT["train"]) and test.images == list(photos.PHOTO_SPLIT["test"])
    assert not set(train.images) & set(test.images)
    # By content too: each held-out HR image is the centre crop of the photo it is named after ...
    assert isinstance(test.hr, list) and len(test.hr) == len(test.images)
    for name, hr, photo in zip(test.images, test.hr, photos.load_photos("test")):
        c, h, w = hr.shape
        assert c == 3 and h == min(photo.shape[0], 256) // 2 * 2 and w == min(photo.shape[1], 256) // 2 * 2, name
        top, left = (photo.shape[0] - h) // 2, (photo.shape[1] - w) // 2
        assert np.array_equal(hr.permute(1, 2, 0).numpy(), photo[top:top + h, left:left + w]), name
    # ... and training patches (textured ones: flat ones occur anywhere) come from train photos only.
    textured = [t for t in train.hr if t.float().std() > 30][:3]
    assert len(textured) == 3
    for t in textured:
        variants = [v.permute(1, 2, 0).numpy() for v in _dihedral(t)]
        assert any(_occurs(v, p) for v in variants for p in photos.load_photos("train"))
        assert not any(_occurs(v, p) for v in variants for p in photos.load_photos("test"))
    assert train.hr.shape == (64, 3, 16, 16)
    assert train.meta() == {"name": "photos", "scale": 2, "patch": 16, "channels": 3, "shape": [3, 16, 16],
                            "count": 64, "images": 11}
    assert test.meta()["shape"] is None and test.meta()["count"] == 5


# -- the patch pool --------------------------------------------------------------------------

def _coordinates(h, w, k):
    """(H, W, 3) uint8 whose pixels say where they are: (row, column, image k)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = np.arange(h)[:, None], np.arange(w)[None, :], k
    return a


def test_patch_pool_is_deterministic_and_within_each_image():
    images = [_coordinates(40, 50, 0), _coordinates(12, 9, 1)]
    pool = patch_pool(images, 300, 8, seed=0)
    assert pool.shape == (300, 3, 8, 8) and pool.dtype == torch.uint8
    assert torch.equal(pool, patch_pool(images, 300, 8, seed=0))
    assert not torch.equal(pool, patch_pool(images, 300, 8, seed=1))
    turns = set()
    for t in pool:
        k = int(t[2, 0, 0])
        top, left = int(t[0].min()), int(t[1].min())
        h, w = images[k].shape[:2]
        assert (t[2] == k).all() and top + 8 <= h and left + 8 <= w
        window = torch.from_numpy(images[k][top:top + 8, left:left + 8]).permute(2, 0, 1)
        matches = [i for i, v in enumerate(_dihedral(window)) if torch.equal(v, t)]
        assert matches, "a patch that is no flip/rotation of a window"
        turns.add(matches[0])
    assert turns == set(range(8))  # every flip/rotation is drawn
    assert {int(t[2, 0, 0]) for t in pool} == {0, 1}  # both images, whatever their size


# -- folders ---------------------------------------------------------------------------------

def test_folder_with_a_small_training_image_is_refused_by_name(tmp_path):
    _png(tmp_path / "a.png", (64, 64))
    _png(tmp_path / "sub" / "b.png", (20, 30))
    with pytest.raises(GankitError, match=r"sub/b\.png: is 20x30 \(width x height\), smaller than the 32x32 "
                                          r"HR patch; use a patch <= 20"):
        load_sr(str(tmp_path), 2, 32)


def test_folder_trains_outside_test_and_tests_on_whole_cropped_images(tmp_path):
    _png(tmp_path / "a.png", (40, 36), seed=1)
    _png(tmp_path / "b.png", (48, 48), seed=2, mode="L")
    _png(tmp_path / "test" / "c.png", (33, 45), seed=3)
    _png(tmp_path / "test" / "tiny.png", (8, 8), seed=4)  # too small to train on, fine to test on
    train = load_sr(str(tmp_path), 2, 32, pool=50)
    assert train.images == ["a.png", "b.png"] and train.hr.shape == (50, 3, 32, 32)
    test = load_sr(str(tmp_path), 3, 30, split="test")
    assert test.images == ["test/c.png", "test/tiny.png"]
    assert [tuple(t.shape) for t in test.hr] == [(3, 45, 33), (3, 6, 6)]
    c = np.asarray(Image.open(tmp_path / "test" / "tiny.png"))
    assert np.array_equal(test.hr[1].permute(1, 2, 0).numpy(), c[1:7, 1:7])  # the centre 6x6
    assert any("centre-cropped 1 of 2 images" in n for n in test.notes)
    with pytest.raises(GankitError, match="no val/ subfolder"):
        load_sr(str(tmp_path), 2, 32, split="val")


def test_sr_data_moves_and_checks_itself():
    d = SRData([torch.zeros(3, 8, 8, dtype=torch.uint8)], 2, "x", 4).to("cpu")
    assert d.channels == 3 and len(d) == 1
    with pytest.raises(GankitError, match="x: no images"):
        SRData(torch.zeros(0, 1, 8, 8, dtype=torch.uint8), 2, "x", 4)
    with pytest.raises(GankitError, match="2 images but 3 labels"):
        SRData(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), 2, "x", 4, y=torch.zeros(3))


# -- operators -------------------------------------------------------------------------------

def test_downscale_shapes_and_a_flat_image():
    x = torch.full((2, 3, 12, 18), 100, dtype=torch.uint8)
    lr = downscale(x, 3)
    assert lr.shape == (2, 3, 4, 6) and lr.dtype == torch.uint8 and (lr == 100).all()
    assert downscale(x.float(), 2).dtype == torch.float32
    # Antialiased: columns 255, 0, 0, 0, ... average to about 255 / 4; plain bicubic would sample
    # between two 0 columns and undershoot to 0.
    stripes = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    stripes[..., ::4] = 255
    assert (downscale(stripes, 4)[0, 0, 4:12, 4:12].float() - 63.75).abs().max() <= 3
    # sides that are not multiples of the scale are modcropped first (bottom and right rows go)
    assert downscale(x, 4).shape[-2:] == (x.shape[-2] // 4, x.shape[-1] // 4)


def test_random_patches_are_seeded_windows_of_the_examples():
    n, c, h, w = 5, 2, 20, 24
    hr = torch.arange(n * c * h * w).reshape(n, c, h, w)  # each value says where it is
    g = torch.Generator().manual_seed(0)
    out = random_patches(hr, 7, 8, g)
    assert out.shape == (7, 2, 8, 8)
    assert torch.equal(out, random_patches(hr, 7, 8, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, random_patches(hr, 7, 8, g))
    for t in out:
        i, rest = divmod(int(t[0, 0, 0]), c * h * w)
        top, left = divmod(rest, w)
        assert torch.equal(t, hr[i, :, top:top + 8, left:left + 8])
    whole = random_patches(hr[:, :, :20, :20], 3, 20, g)
    assert whole.shape == (3, 2, 20, 20)
    with pytest.raises(ValueError, match="patch 21 is larger"):
        random_patches(hr, 1, 21, g)
