"""`evaluate`: distribution metrics of generated images against a reference set, with protocol.

Images go through a feature network the project trains and ships (`gankit.metrics.featurenet`);
torchmetrics computes FID, KID and the (classifier) Inception Score from those features, our own
code the rest (`gankit.metrics.distribution`). Every result carries its protocol: the feature
network and its SHA-256, the resize to its input (`gankit.metrics.resize`), how many samples, the reference set and its size, the seed, and the run
and step when a run was evaluated. Reference features are computed once and cached under
``$GANKIT_CACHE/refs``.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gankit.data import load_data
from gankit.data.dataset import convert_channels
from gankit.media.images import resize_uint8
from gankit.util import cache_dir
from gankit.errors import GankitError, warn
from gankit.metrics.distribution import (class_histogram, class_kl, density_coverage, precision_recall,
                                         stacked_modes)
from gankit.metrics.featurenet import bundled_featurenet_path, load_featurenet
from gankit.metrics.resize import RESIZE_MODES, clean_resize

METRICS = ("fid", "kid", "is", "pr", "dc", "classes", "stacked")
DEFAULT_METRICS = ("fid", "kid", "is", "pr", "dc", "classes", "stacked")
FID_MIN_N = 2000  # below this many samples FID is biased upwards and noisy: warn (the default is 10,000)


class FeatureSet:
    """Features and class logits of one image set under one feature network."""

    def __init__(self, feats: Tensor, logits: Tensor, name: str):
        self.feats, self.logits, self.name = feats, logits, name  # (N, F) float32, (N, K) float32

    def __len__(self) -> int:
        return len(self.feats)


class Evaluator:
    """A feature network plus its cached reference sets. `evaluate(images)` scores one image set."""

    def __init__(self, featurenet: str | Path | None = None, device: str | torch.device = "cpu",
                 resize: str = "legacy"):
        if resize not in RESIZE_MODES:
            raise GankitError(f"--resize {resize}: choose from {', '.join(RESIZE_MODES)}")
        self.resize = resize  # how images of another size reach the network's (gankit.metrics.resize)
        path = Path(featurenet) if featurenet else bundled_featurenet_path()
        self.net, self.meta = load_featurenet(path)
        self.net_name = path.stem
        self.device = torch.device(device)
        self.net.to(self.device)
        self._warned_small_n = False  # warn about a small FID sample once per evaluator

    # -- features -----------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, images: Tensor, name: str = "samples", batch: int = 1000) -> FeatureSet:
        """uint8 (N, C, H, W) images -> features, converted to the network's channels and size."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise GankitError(f"{name}: expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        spec = self.net.spec
        c, res = spec["in_channels"], spec["resolution"]
        feats, logits = [], []
        for part in images.split(batch):
            part = part.to(self.device)
            if part.shape[1] != c:
                part = convert_channels(part, c)
            if part.shape[-2:] == (res, res):
                x = part.float()
            elif self.resize == "clean":
                x = clean_resize(part, res).to(self.device)  # float [0, 255], never rounded
            else:
                x = resize_uint8(part, res).float()
            x = x.div_(127.5).sub_(1.0)  # [-1, 1], as the network was trained
            h = self.net.features(x)
            feats.append(h.float().cpu())
            logits.append(self.net.head(h).float().cpu())
        return FeatureSet(torch.cat(feats), torch.cat(logits), name)

    def reference(self, ref: str) -> FeatureSet:
        """Features of a data source, cached per (network, source)."""
        archive = _archive(ref)  # a zip or folder is read in place, REF_MAX images at most
        stamp = "" if archive is None else f"|{_stamp(archive.path)}|{REF_MAX}"  # a changed file is a new reference
        stamp += "" if self.resize == "legacy" else f"|resize={self.resize}"  # legacy keeps the keys it always had
        key = hashlib.sha256(f"{self.meta['sha256']}|{ref}{stamp}".encode()).hexdigest()[:20]
        path = cache_dir() / "refs" / f"{key}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return FeatureSet(torch.from_numpy(z["feats"]), torch.from_numpy(z["logits"]), ref)
        if archive is not None:
            fs = self.archive_features(archive, ref)
        else:
            data = load_data(ref)
            if data.kind != "image":
                raise GankitError(f"--ref {ref}: reference must be an image set")
            fs = self.features(data.x, ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, feats=fs.feats.numpy(), logits=fs.logits.numpy())
        tmp.replace(path)
        return fs

    def archive_features(self, archive, name: str) -> FeatureSet:
        """Features of at most REF_MAX images of a zip or folder (a fixed random subset when it holds
        more), decoded a chunk at a time: memory bounded whatever the set's size."""
        from gankit.data.stream import conform_image

        n = len(archive)
        idx = torch.arange(n) if n <= REF_MAX else torch.randperm(n, generator=torch.Generator().manual_seed(0))[:REF_MAX].sort().values
        shape = archive.shape
        chunk = max(1, min(1000, REF_CHUNK_BYTES // int(np.prod(shape))))
        parts = []
        for part in idx.split(chunk):
            x = torch.stack([conform_image(im, tuple(im.shape), shape, archive.where(i))  # odd sizes resized
                             for i in part.tolist() for im in (archive.read(i),)])
            parts.append(self.features(x, name))
        return FeatureSet(torch.cat([p.feats for p in parts]), torch.cat([p.logits for p in parts]), name)

    # -- scoring ------------------------------------------------------------------------------
    def evaluate(self, images: Tensor, metrics=DEFAULT_METRICS, ref: str = "mnist:test", seed: int = 0,
                 run: str | None = None, step: int | None = None, name: str = "samples") -> dict:
        """Score uint8 images (N, C, H, W) against `ref`; returns the JSON-ready result."""
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise GankitError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
        fake = self.features(images, name)
        real = self.reference(ref)
        out = self.score(fake, real, metrics, seed, run, step)
        if "stacked" in metrics:
            out["stacked"] = self.stacked_modes(images)
        return out

    def stacked_modes(self, images: Tensor) -> dict:
        """Stacked MNIST mode coverage: each channel classified as a digit by the feature network;
        modes covered out of 1,000 and KL(mode histogram || uniform) (PacGAN's protocol)."""
        if images.shape[1] != 3:
            raise GankitError(f"the stacked metric needs 3-channel images, got {images.shape[1]} channels")
        digits = torch.stack([self.features(images[:, c:c + 1], "channel").logits.argmax(1)
                              for c in range(3)], 1)  # (N, 3)
        return stacked_modes(digits)

    def score(self, fake: FeatureSet, real: FeatureSet, metrics=DEFAULT_METRICS, seed: int = 0,
              run: str | None = None, step: int | None = None) -> dict:
        need = max([2] + [4 for m in metrics if m == "pr"] + [6 for m in metrics if m == "dc"])
        if min(len(fake), len(real)) < need:  # k-NN balls need k + 1 points (pr: k=3, dc: k=5)
            raise GankitError(f"{', '.join(metrics)} need at least {need} samples and reference images; "
                              f"got {len(fake)} and {len(real)}")
        out: dict = {}
        torch.manual_seed(seed)  # KID's subsets and IS's splits are random
        if "fid" in metrics:
            if len(fake) < FID_MIN_N and not self._warned_small_n:
                self._warned_small_n = True
                warn(f"FID from {len(fake):,} samples is biased upwards and noisy; use at least "
                     f"{FID_MIN_N:,} (10,000 is the default) and compare FIDs only at the same n")
            out["fid"] = fid(real.feats, fake.feats)
        if "kid" in metrics:
            out["kid"] = kid(real.feats, fake.feats)
        if "is" in metrics:
            out["is"] = inception_score(fake.logits)
        if "pr" in metrics:
            out["precision"], out["recall"] = precision_recall(real.feats, fake.feats, k=3)
        if "dc" in metrics:
            out["density"], out["coverage"] = density_coverage(real.feats, fake.feats, k=5)
        if "classes" in metrics:
            k = real.logits.shape[1]
            p_fake = class_histogram(fake.logits.argmax(1), k)
            p_real = class_histogram(real.logits.argmax(1), k)
            out["class_hist"] = [round(float(v), 6) for v in p_fake]
            out["class_kl"] = class_kl(p_fake, p_real)
        out["protocol"] = {
            "feature_net": self.net_name, "feature_net_sha256": self.meta["sha256"],
            "resize": self.resize, "n": len(fake), "ref": real.name, "ref_n": len(real), "seed": seed,
            "run": run, "step": step,
        }
        return out


# Every metric below scores features already gathered on one process: torchmetrics must not
# all-gather its states across a data-parallel job's ranks (it would wait for ranks that never
# call it), hence sync_on_compute=False.


class _Identity(nn.Module):
    """Hands precomputed features to torchmetrics, which asks its extractor for `num_features`."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def fid(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al. 2017)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    m = FrechetInceptionDistance(feature=_Identity(real.shape[1]), reset_real_features=True,
                                  sync_on_compute=False)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return max(0.0, float(m.compute()))


def kid(real: Tensor, fake: Tensor) -> dict:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel, mean and std over 100 random subsets of min(1000, n) samples."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(1000, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": ours are 128-dim, small
        warnings.simplefilter("ignore", UserWarning)
        m = KernelInceptionDistance(feature=_Identity(real.shape[1]), subset_size=size, subsets=100,
                                     sync_on_compute=False)
    m.update(real, real=True)
    m.update(fake, real=False)
    mean, std = m.compute()
    return {"mean": float(mean), "std": float(std)}


def inception_score(logits: Tensor) -> float:
    """Classifier Inception Score (Salimans et al. 2016) with our classifier's logits:
    exp E_x KL(p(y|x) || p(y)), averaged over 10 splits."""
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():  # "will save all extracted features": 10 logits per image
        warnings.simplefilter("ignore", UserWarning)
        m = InceptionScore(feature=_Identity(logits.shape[1]), splits=min(10, len(logits)),
                           sync_on_compute=False)
    m.update(logits.double())
    mean, _ = m.compute()
    return float(mean)


REF_MAX = 50_000  # reference images read from a zip or folder (FID's usual 50k)
REF_CHUNK_BYTES = 1 << 28  # decoded bytes per chunk of reference images


def _archive(ref: str):
    """The zip, or the folder of more than REF_MAX images, that `ref` names (read in place), else None
    (a smaller folder loads as a training set does: unreadable files skipped with a note)."""
    from gankit.data.archive import ImageArchive

    p = Path(ref).expanduser()
    if p.is_file() and p.suffix.lower() == ".zip":
        return ImageArchive(p)
    if p.is_dir():
        a = ImageArchive(p)
        return a if len(a) > REF_MAX else None
    return None


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def floor(evaluator: Evaluator, n: int = 10_000, ref: str = "mnist:test", metrics=DEFAULT_METRICS,
          seed: int = 0) -> dict:
    """What a perfect generator scores: n real MNIST training images against the reference set."""
    train = load_data("mnist").x[:n]
    return evaluator.evaluate(train, metrics, ref, seed, name=f"mnist[:{n}]")



@torch.no_grad()
def d_accuracy(run, ref: str = "mnist:test", n: int = 10_000, seed: int = 0) -> dict:
    """The run's D on held-out real images (conformed to the run's data shape) and on n fresh
    fakes: the share it gets right on each side (the tutorial's evaluation measure)."""
    from gankit.data import to_model

    D = run.discriminator()
    c, h, w = run.data_meta["shape"]
    real = load_data(ref, resolution=h, channels=c).x[:n]
    x_fake = run.sample(n, seed=seed)
    needs_y = run.config.model.d_head == "projection"
    acc = {}
    for side, images in (("real", real), ("fake", x_fake)):
        hits = 0
        for part in images.split(1000):
            x = to_model(part.to(run.device), "image")
            y = run.labels(len(part), seed=seed) if needs_y else None
            logits = D(x, None if y is None else y.to(run.device))
            hits += int(((logits > 0) if side == "real" else (logits < 0)).sum())
        acc[side] = hits / len(images)
    return acc


def target_images(target: str) -> tuple[Tensor, str]:
    """Images `gankit eval` scores from a file: (uint8 images, a name) from an .npz (key x) or a
    folder of images. (Runs and checkpoints are sampled by `gankit.api.evaluate`.)"""
    path = Path(target)
    if path.suffix == ".npz" or path.is_dir():
        if not path.exists():
            raise GankitError(f"{target}: no such file or folder")
        data = load_data(str(path))
        if data.kind != "image":
            raise GankitError(f"{target}: expected images, found 2-D points")
        return data.x, str(path)
    raise GankitError(f"{target}: expected a run directory, a checkpoint .pt, an exported .safetensors, "
                      "a samples .npz or a folder of images")
