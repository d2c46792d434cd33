"""Data sources: `load_data(source)` turns what a user types after ``--data`` into a `Dataset`.

Named sources: ``mnist`` (60,000 train), ``mnist:test`` (10,000), ``mnist@N`` (a low-data
split: N of the 60,000 training digits, N/10 of each class, `low_data_indices`),
``fashion-mnist``, ``fashion-mnist:test``, ``fashion-mnist@N`` (the same for Debian's
Fashion-MNIST, `gankit.data.fashion`), ``stacked-mnist``
(three MNIST digits as RGB channels: 1,000 modes), ``lfw`` / ``lfw:test`` (80 / 20 faces,
25 x 25 grey, `gankit.data.faces`), ``ring8``, ``grid25``,
``fake[:CxHxW[:N]]``, ``phantoms-lesion[:test|@N]`` (labelled phantoms with and without a lesion,
`gankit.data.lesions`). Anything else is a path: a folder of images (or of DICOM series and NIfTI
volumes, read as greyscale slices), a ``.zip`` of images (the layout `gankit dataset` and
stylegan2-ada-pytorch's dataset_tool write), a ``.npz``/``.npy`` array file, an IDX file, or one
DICOM or NIfTI file; or WebDataset shards (``shards-{000000..000009}.tar``, ``pipe:...``).

Zips, folders and shards can also be streamed (`gankit.data.stream`): decoded batch by batch in
worker processes instead of whole at start-up; `load` picks (auto: by decoded size against the
memory budget). docs/data.md describes the paths and the choice.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data.dataset import Dataset, from_model, to_model
from gankit.data.archive import ImageArchive
from gankit.data.files import load_arrays, load_folder, load_idx_file, load_scan, load_scan_zip, zip_holds_scans
from gankit.data.idx import is_idx_path
from gankit.data.mnist import load_mnist, stacked_mnist
from gankit.data.sampler import BatchSampler
from gankit.data import stream as streaming
from gankit.data.shards import is_shards
from gankit.data.synthetic import load_fake, load_toy
from gankit.errors import GankitError
from gankit.media.medical import is_medical

__all__ = ["Dataset", "BatchSampler", "load_data", "low_data_indices", "to_model", "from_model", "SOURCES_HELP"]

SOURCES_HELP = ("mnist, mnist:test, mnist@N (N training digits, N/10 per class), fashion-mnist, fashion-mnist:test, "
                "fashion-mnist@N, stacked-mnist, stacked-mnist:test, ring8, grid25, fake[:CxHxW[:N]], "
                "spoken-digits-spec[:test], lfw, lfw:test (80/20 faces, 25x25 grey), "
                "phantoms-lesion, phantoms-lesion:test, phantoms-lesion@N (labelled phantoms normal/lesion, 64 px), "
                "or a path to a folder of images or scans, a .zip of images, a .npz/.npy file, an IDX file, "
                "a DICOM file or a NIfTI volume (.nii, .nii.gz), "
                "or WebDataset shards (name-{000000..000009}.tar, pipe:...)")


def load_data(source: str, resolution: int | None = None, channels: int | None = None,
              device: torch.device | str = "cpu", strict: bool = False, load: str = "memory",
              memory_budget: float | None = None, workers: int = 0, prefetch: int = 2,
              mirror: bool = False):
    """Load `source`, converted to `channels` and `resolution`, for training on `device`.

    `load` memory: decoded once, whole, onto `device` (a `Dataset`); stream: read batch by batch
    by `workers` processes, `prefetch` batches each ahead (a `StreamData`; zips, folders and
    shards only); auto: stream when the decoded set is larger than `memory_budget` GB (None: a
    quarter of the device's memory). Either way a zip's, folder's or shards' first note says
    which and why. `mirror`: every image also appears flipped left-right (sampler indices [0, 2N)).
    A folder's unreadable images are skipped with a note; `strict` makes the first one an error."""
    if not streaming.can_stream(source) or (load == "memory" and not is_shards(source)):
        if load == "stream":
            raise GankitError(f"data.load=stream: {source!r} cannot stream; streaming reads a .zip of images, a "
                              "folder of images (not of scans: those are read whole) or WebDataset shards "
                              "(data.load memory or auto for the rest)")
        data = _load(source, strict).conform(resolution, channels).to(device)
        if mirror and data.kind != "image":
            raise GankitError(f"data.mirror flips images; data {data.name} is {data.kind}")
        data.mirror = mirror
        return data
    return streaming.open_source(source, resolution, channels, device, strict, load, memory_budget,
                                 workers, prefetch, mirror, resident=lambda: _load(source, strict))


LOW_DATA_SEED = 0  # the one seed of every mnist@N split, so a split is the same everywhere


def low_data_indices(y, n: int, seed: int = LOW_DATA_SEED, name: str = "mnist"):
    """Indices of a class-balanced subset of n examples of labels `y` (int array): n / K of each
    of the K classes, each class's drawn uniformly without replacement with numpy's
    default_rng(seed), in ascending order. The splits nest: the first n/K of a class's
    permutation are the ones kept, so mnist@100 is inside mnist@1000. `name`: the source, for errors."""
    import numpy as np

    classes = np.unique(y)
    k = len(classes)
    if n < k or n % k:
        raise GankitError(f"{name}@{n}: n must be a multiple of the {k} classes (at least {k}), so every class "
                          f"has n/{k} images")
    per, most = n // k, min(int((y == c).sum()) for c in classes)
    if per > most:
        raise GankitError(f"{name}@{n}: more than the data has; a balanced split takes at most {k * most} "
                          f"({most} per class)")
    g = np.random.default_rng(seed)
    out = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        out.append(idx[g.permutation(len(idx))[:per]])
    return np.sort(np.concatenate(out))


def _fashion(split: str):
    from gankit.data.fashion import load_fashion_mnist

    return load_fashion_mnist(split)


def _fashion_classes() -> list[str]:
    from gankit.data.fashion import CLASSES

    return list(CLASSES)


# labelled 28 x 28 sets with a train/test split and class-balanced @N subsets:
# name -> (split -> (x, y), class names, what @N's note calls the training split)
_LABELLED = {
    "mnist": (load_mnist, lambda: [str(i) for i in range(10)], "MNIST's 60,000 training digits"),
    "fashion-mnist": (_fashion, _fashion_classes, "Fashion-MNIST's 60,000 training images"),
}


def _load(source: str, strict: bool = False) -> Dataset:
    base, at, count = source.partition("@")
    if at and base in _LABELLED:
        try:
            n = int(count)
        except ValueError:
            raise GankitError(f"data source {source!r}: expected {base}@N with N a whole number, e.g. {base}@1000") from None
        read, classes, what = _LABELLED[base]
        x, y = read("train")
        keep = low_data_indices(y, n, name=base)
        return Dataset(torch.from_numpy(x[keep]), torch.from_numpy(y[keep]), source, classes=classes(),
                       notes=[f"{n} of {what}, {n // 10} per class (seed {LOW_DATA_SEED})"])
    base, _, split = source.partition(":")
    if base in _LABELLED and split in ("", "train", "test"):
        read, classes, _ = _LABELLED[base]
        x, y = read("test" if source.endswith(":test") else "train")
        return Dataset(torch.from_numpy(x), torch.from_numpy(y), source, classes=classes())
    if source in ("stacked-mnist", "stacked-mnist:test"):
        split = "test" if source.endswith(":test") else "train"
        x, y = stacked_mnist(*load_mnist(split))
        return Dataset(x, y, source, classes=[f"{i:03d}" for i in range(1000)])
    if source in ("spoken-digits-spec", "spoken-digits-spec:test"):  # spoken digits as images (the classifier's view)
        from gankit.data.speech import DIGITS, spectrogram_images, spoken_digits, train_spectrogram_stats

        a = spoken_digits("test" if source.endswith(":test") else "train")
        mu, sigma = train_spectrogram_stats()
        x = torch.cat([spectrogram_images(c.float() / 32767.0, mu, sigma) for c in torch.from_numpy(a.x).split(512)])
        return Dataset(x, torch.from_numpy(a.y), source, classes=list(DIGITS),
                       notes=["normalised log spectrograms of the clips (training-split statistics), as uint8 images"])
    if source in ("lfw", "lfw:train", "lfw:test"):  # faces from scikit-image's wheel (gankit.data.faces)
        from gankit.data.faces import load_lfw

        return load_lfw(source)
    if source.split("@")[0].split(":")[0] == "phantoms-lesion":  # labelled phantoms (gankit.data.lesions)
        from gankit.data.lesions import load_lesions

        return load_lesions(source)
    if source in ("ring8", "grid25"):
        return load_toy(source)
    if source == "fake" or source.startswith("fake:"):
        return load_fake(source, source)
    path = Path(source).expanduser()
    if path.is_dir():
        return load_folder(path, source, strict)
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return load_scan_zip(path, source, strict) if zip_holds_scans(path) else load_zip(path, source)
        if path.suffix.lower() in (".npz", ".npy"):
            return load_arrays(path, source)
        if is_idx_path(path):
            return load_idx_file(path, source)
        if is_medical(path):
            return load_scan(path, source)
        raise GankitError(f"{source}: unsupported file type {path.suffix or '(none)'!r}; "
                          "expected .zip, .npz, .npy, an IDX file (name containing 'idx'), a DICOM or NIfTI file, "
                          "or a folder of images")
    if "/" in source or "." in source or "\\" in source:
        raise GankitError(f"data source {source!r}: no such file or folder")
    raise GankitError(f"unknown data source {source!r}; expected {SOURCES_HELP}")


def load_zip(path: Path, name: str) -> Dataset:
    """A zip of images decoded whole: every image in name order, at the set's one size and the
    first image's (or the recorded) channels, its dataset.json's labels."""
    a = ImageArchive(path)
    shape = a.shape
    x = torch.empty((len(a), *shape), dtype=torch.uint8)
    for i in range(len(a)):
        x[i] = streaming.conform_image(a.read(i), shape, shape, a.where(i))
    notes = [f"passed over {a.skipped} non-image entries"] if a.skipped else []
    y = None if a.labels is None else torch.from_numpy(a.labels)
    return Dataset(x, y, name, classes=a.classes, notes=notes)
