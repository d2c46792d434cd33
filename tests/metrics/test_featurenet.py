import json

import pytest
import torch

from gankit.data import Dataset, load_data
from gankit.errors import GankitError
from gankit.metrics.featurenet import (FeatureNet, accuracy, bundled_featurenet_path, load_featurenet,
                                       save_featurenet, train_featurenet)


@pytest.fixture(autouse=True)
def _one_thread():
    # these nets are tiny: a second thread only adds OpenMP sync, which is slow on a busy machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def dark_vs_bright(n: int = 200, seed: int = 0) -> Dataset:
    """Class 0: noise in [0, 110]; class 1: noise in [145, 255]; uint8 (n, 1, 16, 16)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randint(0, 111, (n, 1, 16, 16), generator=g) + 145 * y.view(-1, 1, 1, 1)
    return Dataset(x.to(torch.uint8), y, "dark-vs-bright", classes=["dark", "bright"])


@pytest.mark.parametrize("c, res", [(1, 28), (3, 32), (3, 64)])
def test_shapes(c, res):
    net = FeatureNet(in_channels=c, n_classes=7, resolution=res, width=8, feat_dim=24).eval()
    x = torch.rand(3, c, res, res) * 2 - 1
    f = net.features(x)
    assert f.shape == (3, 24) and net.num_features == 24
    assert (f >= 0).all()  # post-ReLU
    assert net.logits(x).shape == (3, 7)
    torch.testing.assert_close(net(x), net.logits(x))


def test_too_small_resolution_is_refused():
    with pytest.raises(GankitError, match="at least 16x16"):
        FeatureNet(resolution=8)


def test_save_load_round_trip(tmp_path):
    net = FeatureNet(in_channels=3, n_classes=4, resolution=32, width=8, feat_dim=16)
    net.train()
    net(torch.randn(8, 3, 32, 32))  # move the BatchNorm running stats off their defaults
    net.eval()
    path = tmp_path / "net.safetensors"
    save_featurenet(net, path, {"test_accuracy": 0.5, "seed": 3})
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["spec"] == net.spec and side["seed"] == 3 and len(side["sha256"]) == 64

    loaded, meta = load_featurenet(path)
    assert not loaded.training and meta["test_accuracy"] == 0.5 and loaded.spec == net.spec
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.features(x), net.features(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_tampered_weights_are_refused(tmp_path):
    path = tmp_path / "net.safetensors"
    save_featurenet(FeatureNet(width=8, feat_dim=16), path, {})
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # a byte inside the last tensor's data: still a valid safetensors file
    path.write_bytes(bytes(raw))
    with pytest.raises(GankitError, match="SHA-256") as e:
        load_featurenet(path)
    assert "net.safetensors" in str(e.value) and "\n" not in str(e.value)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(GankitError, match="nope.safetensors"):
        load_featurenet(tmp_path / "nope.safetensors")
    path = tmp_path / "net.safetensors"
    save_featurenet(FeatureNet(width=8, feat_dim=16), path, {})
    path.with_suffix(".json").unlink()
    with pytest.raises(GankitError, match="net.json"):
        load_featurenet(path)


def test_bundled_mnist_net():
    net, meta = load_featurenet(bundled_featurenet_path())
    assert meta["test_accuracy"] >= 0.99 and meta["data"] == "mnist"
    test = load_data("mnist:test")
    first = Dataset(test.x[:1000], test.y[:1000], "mnist:test[:1000]")
    assert accuracy(net, first, batch=1000) >= 0.98


def test_training_learns_and_is_deterministic():
    data = dark_vs_bright()
    kw = dict(epochs=2, batch=16, lr=3e-3, seed=1, width=8, feat_dim=16, log=lambda s: None)
    before = torch.get_rng_state()
    net, meta = train_featurenet(data, data, **kw)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    assert not torch.are_deterministic_algorithms_enabled()  # and so is the global setting
    assert meta["test_accuracy"] > 0.9 and meta["n_train"] == 200 and meta["channels"] == 1
    assert accuracy(net, data) == meta["test_accuracy"]

    again, _ = train_featurenet(data, None, **kw)
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    other, _ = train_featurenet(data, None, **{**kw, "seed": 2})
    assert not torch.equal(other.head.weight, net.head.weight)


def test_training_with_shift_augmentation_runs():
    net, meta = train_featurenet(dark_vs_bright(64), None, epochs=1, batch=16, width=8, feat_dim=16,
                                 shift=2, log=lambda s: None)
    assert meta["test_accuracy"] is None and meta["shift"] == 2 and 0 <= meta["train_accuracy"] <= 1


def test_unlabelled_data_is_refused():
    data = dark_vs_bright()
    data.y = None
    with pytest.raises(GankitError, match="needs labelled data; dark-vs-bright has none"):
        train_featurenet(data, None, epochs=1, log=lambda s: None)


def test_shift_translates_each_image_by_at_most_pad():
    from gankit.metrics.featurenet import _shift
    x = torch.full((64, 2, 16, 16), -1.0)
    x[:, :, 8, 5] = 1.0  # one white pixel per image, same place in both channels
    out = _shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and (out == 1).sum() == 64 * 2  # nothing lost, nothing duplicated
    rows, cols = torch.nonzero(out[:, 0] == 1)[:, 1:].T
    assert (rows - 8).abs().max() <= 2 and (cols - 5).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # offsets differ between images
    torch.testing.assert_close(out[:, 0], out[:, 1])  # one offset per image, shared by its channels
