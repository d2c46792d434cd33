"""FID statistics files other tools read: `.npz` with ``mu`` (D,) and ``sigma`` (D, D).

pytorch-fid (``fid_score.py``: ``np.savez_compressed(path, mu=, sigma=)``, read back with
``f['mu'][:], f['sigma'][:]``) and clean-fid (``fid.py``/``features.py``: the same keys) write and
read exactly these two arrays and ignore any other key, so gankit writes them the same way and
keeps its protocol record (network, weights hash, resize, n, source) beside them as one JSON
string under ``gankit_protocol``. pytorch-fid stores float64 for both; clean-fid float32 ``mu``
and float64 ``sigma``: both are read, and computed on, as float64.

`StatsNetwork` is the network the statistics belong to (the Inception FID network or a gankit
feature network) together with the resize that brings images to its input: a statistics file is
only comparable with features of the same network, weights and resize.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gankit import disk
from gankit.errors import GankitError
from gankit.metrics.resize import RESIZE_MODES
from gankit.util import sha256_file

PROTOCOL_KEY = "gankit_protocol"  # an extra key: pytorch-fid and clean-fid read only mu and sigma


@dataclass(frozen=True)
class FidStats:
    """Gaussian statistics of one feature set; `protocol` is None for a file gankit did not write."""

    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64
    protocol: dict | None
    path: str

    @property
    def dims(self) -> int:
        return len(self.mu)


def feature_stats(feats: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (mu (D,), sigma (D, D)) in float64, sigma with the 1/(N-1) normalisation,
    as pytorch-fid and clean-fid compute them (np.mean, np.cov(rowvar=False))."""
    a = feats.detach().cpu().double().numpy()
    if a.ndim != 2 or len(a) < 2:
        raise GankitError(f"FID statistics need at least 2 feature vectors (N, D); got shape {tuple(a.shape)}")
    return a.mean(0), np.cov(a, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix; rounding's tiny negative
    eigenvalues are taken as 0."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017):

    d^2 = |mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))

    Tr((S1 S2)^(1/2)) = Tr((A S2 A)^(1/2)) with A = S1^(1/2) (the same eigenvalues), and A S2 A is
    symmetric PSD, so two symmetric eigendecompositions give it without the complex parts and the
    singular-product fallback that scipy's sqrtm of the non-symmetric S1 S2 needs when N < D."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise GankitError(f"FID statistics do not match: mu {mu1.shape} and {mu2.shape}, "
                          f"sigma {s1.shape} and {s2.shape}")
    a = _sqrt_psd(s1)
    m = a @ s2 @ a
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean))


def _check_npz_path(path: Path, flag: str) -> None:
    if path.suffix.lower() != ".npz":
        raise GankitError(f"{flag} {path}: expected an .npz file (pytorch-fid / clean-fid statistics: "
                          "arrays mu and sigma)")


def save_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray, protocol: dict) -> None:
    """Write mu and sigma as pytorch-fid and clean-fid do (compressed npz), plus the protocol record,
    atomically: a failed write leaves no file."""
    path = Path(path)
    _check_npz_path(path, "--save-stats")
    with disk.atomic(path) as tmp:
        np.savez_compressed(tmp, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64),
                            **{PROTOCOL_KEY: np.array(json.dumps(protocol, sort_keys=True))})


def load_stats(path: str | Path, flag: str = "--ref-stats") -> FidStats:
    """Read a statistics .npz written by pytorch-fid, clean-fid or gankit; every defect is one line."""
    path = Path(path)
    _check_npz_path(path, flag)
    if not path.is_file():
        raise GankitError(f"{flag} {path}: no such file")
    where = f"{flag} {path}"
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in ("mu", "sigma") if k not in keys]
            if missing:
                raise GankitError(f"{where}: no {' and no '.join(missing)} array (it holds "
                                  f"{', '.join(sorted(keys)) or 'nothing'}); expected FID statistics "
                                  "with mu (D,) and sigma (D, D)")
            mu, sigma = z["mu"], z["sigma"]
            raw = z[PROTOCOL_KEY] if PROTOCOL_KEY in keys else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:  # ValueError: pickled object arrays
        raise GankitError(f"{where}: not a readable .npz ({str(e).splitlines()[0][:100]})") from None
    for name, a in (("mu", mu), ("sigma", sigma)):
        if a.dtype.kind not in "fiu":
            raise GankitError(f"{where}: {name} has dtype {a.dtype}; expected real numbers (float32/float64)")
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise GankitError(f"{where}: mu has shape {mu.shape} and sigma {sigma.shape}; expected mu (D,) "
                          "and sigma (D, D) with the same D")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    for name, a in (("mu", mu), ("sigma", sigma)):
        if not np.isfinite(a).all():
            raise GankitError(f"{where}: {name} holds {int((~np.isfinite(a)).sum())} non-finite values (nan or inf)")
    if not np.allclose(sigma, sigma.T, rtol=1e-5, atol=1e-8 * max(1.0, float(np.abs(sigma).max()))):
        raise GankitError(f"{where}: sigma is not symmetric, so not a covariance matrix")
    protocol = None
    if raw is not None:
        try:
            protocol = json.loads(str(raw))
            if not isinstance(protocol, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise GankitError(f"{where}: its {PROTOCOL_KEY} is not a JSON object ({e})") from None
    return FidStats(mu, sigma, protocol, str(path))


class StatsNetwork:
    """The network FID statistics are taken in, with the resize to its input: the Inception FID
    network when `inception_weights` is given (2048 pool features at 299 px), else a gankit
    feature network (default the bundled MNIST one). `record` is its part of the protocol."""

    def __init__(self, featurenet: str | Path | None = None, inception_weights: str | Path | None = None,
                 resize: str = "legacy", device: str | torch.device = "cpu"):
        if resize not in RESIZE_MODES:
            raise GankitError(f"--resize {resize}: choose from {', '.join(RESIZE_MODES)}")
        self.resize = resize
        if inception_weights:
            from gankit.metrics.inception import INPUT_SIZE, inception_extractor

            self._inception = inception_extractor(inception_weights)
            self._evaluator = None
            self.record = {"network": "inception-v3-compat", "weights": Path(inception_weights).name,
                           "network_sha256": sha256_file(inception_weights), "dims": 2048,
                           "input_size": INPUT_SIZE, "resize": resize}
        else:
            from gankit.metrics.evaluate import Evaluator

            self._inception = None
            self._evaluator = Evaluator(featurenet, device, resize=resize)
            spec = self._evaluator.net.spec
            self.record = {"network": self._evaluator.net_name, "weights": f"{self._evaluator.net_name}.safetensors",
                           "network_sha256": self._evaluator.meta["sha256"], "dims": spec["feat_dim"],
                           "input_size": spec["resolution"], "resize": resize}

    @property
    def dims(self) -> int:
        return self.record["dims"]

    def features(self, images: Tensor, name: str = "samples") -> Tensor:
        """uint8 (N, C, H, W) -> (N, D) float32 features."""
        if self._inception is not None:
            from gankit.metrics.inception import inception_features

            return inception_features(self._inception, images, resize=self.resize)
        return self._evaluator.features(images, name).feats

    def source_features(self, source: str) -> tuple[Tensor, str]:
        """Features of a data source (a zip or large folder is read in place, REF_MAX images at
        most, as `gankit eval --ref` reads it) and its name."""
        if self._evaluator is not None:
            return self._evaluator.reference(source).feats, source  # cached per network and resize
        from gankit.data import load_data

        data = load_data(source)
        if data.kind != "image":
            raise GankitError(f"--ref {source}: FID statistics need an image set")
        return self.features(data.x, source), source

    def check(self, stats: FidStats) -> None:
        """Refuse statistics of another network or resize (one line naming both); those of a file
        without a gankit record can only be checked for their dimension."""
        net = f"{self.record['network']} ({self.record['weights']})"
        if stats.dims != self.dims:
            hint = ("; pytorch-fid / clean-fid statistics are Inception pool features: pass --inception-weights"
                    if stats.dims == 2048 and self._inception is None else "")
            raise GankitError(f"--ref-stats {stats.path}: statistics of {stats.dims}-dim features, but "
                              f"{net} gives {self.dims}-dim features{hint}")
        p = stats.protocol
        if p is None:
            return
        if p.get("network_sha256") not in (None, self.record["network_sha256"]):
            raise GankitError(f"--ref-stats {stats.path}: taken with {p.get('network')} ({p.get('weights')}, sha256 "
                              f"{str(p['network_sha256'])[:12]}...), not {net} (sha256 "
                              f"{self.record['network_sha256'][:12]}...): FIDs across networks are not comparable")
        if p.get("resize") not in (None, self.resize):
            raise GankitError(f"--ref-stats {stats.path}: taken with --resize {p['resize']}, this evaluation uses "
                              f"--resize {self.resize}: pass --resize {p['resize']}")
