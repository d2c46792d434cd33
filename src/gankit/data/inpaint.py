"""Images for inpainting: fixed-size crops a model learns to complete.

`load_inpaint(source, split, patch)` returns an `InpaintData`: uint8 (N, C, S, S) images (S = 28
for MNIST, `patch` otherwise), on the device whole. The holes are not part of the data: the task
draws them (`gankit.data.masks`).

Sources (``NAME`` is split train, ``NAME:test`` split test):

- ``mnist``: the 28x28 digits, whole, 1 channel, labels kept in `y` (60,000 train; 10,000 test).
- ``photos``: crops of the natural photos of `gankit.data.photos.PHOTO_SPLIT`, the same split as
  super-resolution (no task trains on a held-out photo): `POOL` (4,000) patch x patch crops of
  the train photos, or `TEST_POOL` (500) of the held-out photos, drawn once by
  `gankit.data.superres.patch_pool` (a uniform photo, a uniform position, one of the 8
  flips/rotations by 90 degrees) with seed 0 for train and 1 for test. 3 channels.
- a folder: its images by `gankit.data.superres.folder_arrays` (train = all but its ``test/`` and
  ``val/`` subfolders, or its ``train/`` subfolder; ``test`` = that subfolder), cropped as the
  photos are. Grey when every image is grey: a folder of grayscale scans trains a 1-channel
  inpainter. An image smaller than the patch is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from gankit.data.files import name_list
from gankit.errors import GankitError

INPAINT_SOURCES_HELP = ("mnist, mnist:test, photos, photos:test, or a folder of images (a test/ subfolder holds "
                        "its held-out images)")
POOL = 4000  # training crops of photos and folders
TEST_POOL = 500  # held-out crops
SEEDS = {"train": 0, "test": 1}
DEFAULT_PATCH = 64
MNIST_SIDE = 28


class HeldImages:
    """What the sets of images held whole as one tensor `x` (N, C, S, S) share (`InpaintData`,
    `gankit.data.phantoms.ReconData`): never empty, their length and example shape, a move to a
    device that takes their other tensors along (`TENSORS` names them), and the meta a checkpoint
    keeps."""

    TENSORS: ClassVar[tuple[str, ...]] = ("x",)
    x: torch.Tensor
    name: str

    def _check_not_empty(self) -> None:
        if len(self.x) == 0:
            raise GankitError(f"{self.name}: no images")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    def to(self, device: torch.device | str):
        for key in self.TENSORS:
            t = getattr(self, key)
            setattr(self, key, None if t is None else t.to(device))
        return self

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "shape": list(self.shape), "channels": self.shape[0], "count": len(self)}


@dataclass
class InpaintData(HeldImages):
    TENSORS: ClassVar[tuple[str, ...]] = ("x", "y", "masks")
    x: torch.Tensor  # uint8 (N, C, S, S)
    name: str  # the source as the user named it
    y: torch.Tensor | None = None  # int64 (N,) labels (MNIST), or None
    notes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # the source images' names (photos, files)
    masks: torch.Tensor | None = None  # bool (M, 1, S, S): the training mask pool, set by the task

    def __post_init__(self) -> None:
        self._check_not_empty()


def load_inpaint(source: str, split: str = "train", patch: int | None = None, strict: bool = False) -> InpaintData:
    """Load `source` (see the module docstring) for `split`, crops of `patch` px (None: 28 for
    MNIST, `DEFAULT_PATCH` otherwise). `strict` makes an unreadable image of a folder an error."""
    base, _, tail = source.partition(":")
    if base in ("mnist", "photos"):
        if tail not in ("", "train", "test"):
            raise GankitError(f"{source}: unknown split {tail!r}; expected {base} or {base}:test")
        split = tail or split
        if split not in SEEDS:
            raise GankitError(f"{source}: unknown split {split!r}; expected 'train' or 'test'")
    if base == "mnist":
        if patch not in (None, MNIST_SIDE):
            raise GankitError(f"inpaint.patch = {patch}: MNIST trains on whole 28x28 digits; leave it unset or 28")
        from gankit.data.mnist import load_mnist

        x, y = load_mnist(split)
        return InpaintData(torch.from_numpy(x), "mnist" if split == "train" else "mnist:test", y=torch.from_numpy(y))
    patch = DEFAULT_PATCH if patch is None else patch
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 8:
        raise GankitError(f"inpaint.patch = {patch!r}: expected a whole number of pixels >= 8")
    if base == "photos":
        from gankit.data.photos import PHOTO_SPLIT, load_photos

        names, arrays, notes, root = list(PHOTO_SPLIT[split]), load_photos(split), [], None
    else:
        from gankit.data.superres import folder_arrays

        root = Path(source).expanduser()
        names, arrays, notes = folder_arrays(root, source, split, strict, "inpainting", INPAINT_SOURCES_HELP)
    return _crops(source, split, names, arrays, patch, notes, root)


def _crops(name: str, split: str, names: list[str], arrays: list[np.ndarray], patch: int, notes: list[str],
           root: Path | None) -> InpaintData:
    from gankit.data.superres import image_shapes, patch_pool

    small = [(n, s) for n, s in zip(names, image_shapes(arrays)) if min(s[:2]) < patch]
    if small:
        n, s = small[0]
        who = f"{root / n}:" if root is not None else f"{name}: the photo {n!r}"
        more = f" ({len(small) - 1} more like it)" if len(small) > 1 else ""
        raise GankitError(f"{who} is {s[1]}x{s[0]} (width x height){more}, smaller than the "
                          f"{patch}x{patch} crops; use a smaller inpaint.patch or remove the smaller images")
    count = POOL if split == "train" else TEST_POOL
    x = patch_pool(arrays, count, patch, seed=SEEDS.get(split, 1))
    notes = notes + [f"drew {count} random {patch}x{patch} crops (seed {SEEDS.get(split, 1)}, random flips and "
                     f"90-degree rotations) from {len(names)} images ({name_list(names)})"]
    return InpaintData(x, name, notes=notes, images=names)


def load_held_out(source: str, patch: int | None = None) -> InpaintData:
    """The held-out images of a training `source` (mnist:test, photos:test, a folder's test/), for
    the tasks that train on these images and score on held-out ones (inpaint, denoise)."""
    base = source.split(":")[0]
    try:
        return load_inpaint(f"{base}:test" if base in ("mnist", "photos") else source, "test", patch)
    except GankitError as e:
        raise GankitError(f"{source}: no held-out images to evaluate on ({e})") from None
