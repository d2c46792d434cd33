import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import BatchSampler, load_data
from gankit.data.idx import parse_idx, read_idx, write_idx
from gankit.data.synthetic import toy_modes
from gankit.errors import GankitError


def _png(path, size=(8, 8), mode="L", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(path)


# -- MNIST -----------------------------------------------------------------------------------

def test_mnist_train_and_test_splits():
    train, test = load_data("mnist"), load_data("mnist:test")
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.uint8
    assert test.x.shape == (10000, 1, 28, 28)
    # The standard train split's class counts (LeCun et al.): proves 50k + 10k in the right order.
    assert np.bincount(train.y.numpy()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.y.numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(train.x.max()) == 255 and int(train.x.min()) == 0


def test_mnist_conforms_to_model_shape():
    d = load_data("mnist:test", resolution=32, channels=3)
    assert d.x.shape == (10000, 3, 32, 32)
    assert any("resized" in n for n in d.notes) and any("channels" in n for n in d.notes)


# -- toy and fake ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, modes, std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy_points_sit_on_their_modes(name, modes, std):
    d = load_data(name)
    centres, s = toy_modes(name)
    assert d.kind == "points" and d.x.shape == (50000, 2) and len(centres) == modes and s == std
    dist = (d.x - centres[d.y]).norm(dim=1)
    assert dist.max() < 6 * std  # every point within 6 std of its own mode
    assert d.to_model(d.x).abs().max() < 1  # fits a tanh generator
    assert np.bincount(d.y.numpy(), minlength=modes).min() > 50000 / modes * 0.9


def test_ring8_radius_two():
    centres, _ = toy_modes("ring8")
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 2.0))


def test_fake_any_shape():
    d = load_data("fake:3x16x12:10")
    assert d.x.shape == (10, 3, 16, 12) and d.x.dtype == torch.uint8 and d.y.shape == (10,)
    assert load_data("fake").x.shape == (1024, 1, 28, 28)


@pytest.mark.parametrize("spec", ["fake:2x8x8", "fake:1x8", "fake:1x8x8:0", "fake:a", "fake:1x8x8:3:4"])
def test_fake_bad_spec(spec):
    with pytest.raises(GankitError, match="fake\\[:CxHxW"):
        load_data(spec)


def test_unknown_source_lists_valid():
    with pytest.raises(GankitError, match="unknown data source .cifar.*mnist, mnist:test, mnist@N .*, stacked-mnist"):
        load_data("cifar")


def test_missing_path(tmp_path):
    with pytest.raises(GankitError, match="no such file or folder"):
        load_data(str(tmp_path / "nope"))


# -- folders ---------------------------------------------------------------------------------

def test_folder_with_class_subfolders(tmp_path):
    for i in range(3):
        _png(tmp_path / "cat" / f"{i}.png", value=10)
        _png(tmp_path / "dog" / "deep" / f"{i}.bmp", value=200)
    (tmp_path / "notes.txt").write_text("not an image")
    d = load_data(str(tmp_path))
    assert d.x.shape == (6, 1, 8, 8) and d.classes == ["cat", "dog"]
    assert sorted(d.y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert set(d.x[d.y == 1].unique().tolist()) == {200}
    assert "skipped 1 non-image files" in d.notes


def test_folder_without_classes_mixed_sizes_and_colour(tmp_path):
    _png(tmp_path / "a.png", (8, 8))
    _png(tmp_path / "b.png", (8, 8))
    _png(tmp_path / "c.jpg", (16, 12), mode="RGB", value=128)
    d = load_data(str(tmp_path))
    assert d.y is None and d.x.shape == (3, 3, 8, 8)
    assert any("resized 1 images" in n for n in d.notes)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(GankitError, match="no images found.*skipped 1 other files"):
        load_data(str(tmp_path))


def test_corrupt_and_truncated_images_named_when_strict(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(GankitError, match="bad.png: corrupt or truncated image"):
        load_data(str(tmp_path), strict=True)
    (tmp_path / "bad.png").unlink()
    Image.new("L", (64, 64)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(GankitError, match="cut.png: corrupt or truncated image"):
        load_data(str(tmp_path), strict=True)


def test_loose_image_beside_class_folders(tmp_path):
    _png(tmp_path / "cat" / "0.png")
    _png(tmp_path / "stray.png")
    with pytest.raises(GankitError, match="stray.png: image at the top"):
        load_data(str(tmp_path))


# -- arrays ----------------------------------------------------------------------------------

def test_npz_with_labels_and_layouts(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)  # NHWC
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(5))
    d = load_data(str(tmp_path / "d.npz"))
    assert d.x.shape == (5, 3, 8, 8) and d.y.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(d.x[2].permute(1, 2, 0), torch.from_numpy(x[2]))
    np.save(tmp_path / "f.npy", np.full((4, 6, 6), 0.5, dtype=np.float32))
    f = load_data(str(tmp_path / "f.npy"))
    assert f.x.shape == (4, 1, 6, 6) and int(f.x[0, 0, 0, 0]) == 128 and f.y is None


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(GankitError, match=r"k.npz: has keys \['images'\]; expected 'x'"):
        load_data(str(tmp_path / "k.npz"))
    np.savez(tmp_path / "m.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(2, np.int64))
    with pytest.raises(GankitError, match="m.npz: 3 images but 2 labels"):
        load_data(str(tmp_path / "m.npz"))
    np.save(tmp_path / "r.npy", np.full((2, 4, 4), 7.0, np.float32))
    with pytest.raises(GankitError, match=r"r.npy: float images range over \[7, 7\]"):
        load_data(str(tmp_path / "r.npy"))
    np.save(tmp_path / "s.npy", np.zeros((2, 5, 4, 6), np.uint8))
    with pytest.raises(GankitError, match="s.npy: images have shape"):
        load_data(str(tmp_path / "s.npy"))
    (tmp_path / "t.npz").write_bytes(b"garbage")
    with pytest.raises(GankitError, match="t.npz: cannot read array file"):
        load_data(str(tmp_path / "t.npz"))
    (tmp_path / "u.csv").write_text("1,2")
    with pytest.raises(GankitError, match="unsupported file type '.csv'"):
        load_data(str(tmp_path / "u.csv"))


def test_npy_points(tmp_path):
    np.save(tmp_path / "p.npy", np.array([[0.0, 1.0], [3.0, -2.0]], np.float32))
    d = load_data(str(tmp_path / "p.npy"))
    assert d.kind == "points" and d.to_model(d.x).abs().max() < 1


# -- IDX -------------------------------------------------------------------------------------

def test_idx_round_trip_and_labels_beside(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    write_idx(tmp_path / "my-images-idx3-ubyte", x)
    write_idx(tmp_path / "my-labels-idx1-ubyte", np.arange(7, dtype=np.uint8))
    assert np.array_equal(read_idx(tmp_path / "my-images-idx3-ubyte"), x)
    d = load_data(str(tmp_path / "my-images-idx3-ubyte"))
    assert d.x.shape == (7, 1, 5, 4) and d.y.tolist() == list(range(7))
    write_idx(tmp_path / "z-images-idx3-ubyte.gz", x)
    assert gzip.decompress((tmp_path / "z-images-idx3-ubyte.gz").read_bytes())[:4] == b"\x00\x00\x08\x03"
    assert load_data(str(tmp_path / "z-images-idx3-ubyte.gz")).y is None


def test_idx_errors():
    with pytest.raises(GankitError, match="not an IDX file"):
        parse_idx(b"\x01\x02\x03\x04", "f")
    with pytest.raises(GankitError, match="type code 0x0d"):
        parse_idx(b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd", "f")
    with pytest.raises(GankitError, match="but 2 bytes follow"):
        parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x03ab", "f")


# -- sampler ---------------------------------------------------------------------------------

def test_sampler_covers_each_epoch_and_resumes():
    s = BatchSampler(10, 4, seed=5)
    stream = torch.cat([s.next() for _ in range(5)])  # 20 indices = 2 epochs
    assert sorted(stream[:10].tolist()) == list(range(10)) and sorted(stream[10:].tolist()) == list(range(10))
    t = BatchSampler(10, 4, seed=5)
    t.next()
    state = t.state_dict()
    u = BatchSampler(10, 4, seed=5)
    u.load_state_dict(state)
    assert torch.equal(torch.cat([u.next() for _ in range(4)]), stream[4:])
    assert not torch.equal(torch.cat([BatchSampler(10, 4, seed=6).next() for _ in range(2)]), stream[:8])


def test_batch_larger_than_dataset():
    with pytest.raises(GankitError, match="batch size 11 is larger than the dataset \\(10"):
        BatchSampler(10, 11, seed=0)
