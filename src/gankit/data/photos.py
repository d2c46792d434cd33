"""Natural photos, offline: the test images that the scikit-image wheel ships, in one fixed split.

Every task that needs photos (MNIST-M textures for translation now; super-resolution and
inpainting later) takes them from `PHOTO_SPLIT`, so that no task trains on a photo that another
task holds out. Only photos stored inside the wheel are listed (each checked with the network off,
scikit-image 0.26); those that `skimage.data` downloads at run time (eagle, lily, skin, brain,
kidney, cells3d, ...) are not. Left out on purpose: ``cat`` (the same photo as ``chelsea``),
``hubble_deep_field`` (89% near-black sky: its crops are flat), ``horse`` (a binary silhouette),
``colorwheel``, ``checkerboard``, ``logo``, ``shepp_logan_phantom`` (synthetic), ``clock``
(deliberately motion-blurred), ``cell`` and ``microaneurysms`` (flat microscopy; 102 px).

The split (colour photos first, then grey ones):

- train: astronaut, coffee, retina, motorcycle_left, motorcycle_right (the stereo pair: two views
  of one scene, so both on the same side); brick, coins, gravel, moon, page, text
- test (held out): chelsea, rocket, immunohistochemistry; camera, grass
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from gankit.errors import GankitError

PHOTO_SPLIT: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "coffee", "retina", "motorcycle_left", "motorcycle_right",
              "brick", "coins", "gravel", "moon", "page", "text"),
    "test": ("chelsea", "rocket", "immunohistochemistry", "camera", "grass"),
}


def load_photos(split: str, colour_only: bool = False) -> list[np.ndarray]:
    """The photos of `split` ('train' or 'test') as uint8 (H, W, 3), in `PHOTO_SPLIT` order; grey
    photos are repeated to 3 channels, or left out with `colour_only`. Colour arrays are shared
    between calls and read-only."""
    if split not in PHOTO_SPLIT:
        raise GankitError(f"unknown photo split {split!r}; expected one of {', '.join(PHOTO_SPLIT)}")
    photos = [_photo(name) for name in PHOTO_SPLIT[split]]
    return [np.repeat(p[:, :, None], 3, axis=2) if p.ndim == 2 else p
            for p in photos if p.ndim == 3 or not colour_only]


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    data = _skimage_data()
    try:
        with warnings.catch_warnings():  # skimage's PIL plugin uses an API Pillow deprecates: not ours to show
            warnings.simplefilter("ignore", DeprecationWarning)
            if name.startswith("motorcycle_"):
                a = data.stereo_motorcycle()[0 if name == "motorcycle_left" else 1]
            else:
                a = getattr(data, name)()
    except (ImportError, OSError, ValueError) as e:
        import skimage

        raise GankitError(f"scikit-image {skimage.__version__} cannot load its bundled photo {name!r} ({e}); "
                          "reinstall it with `pip install --force-reinstall scikit-image`") from None
    a = np.ascontiguousarray(a[:, :, :3] if a.ndim == 3 else a, dtype=np.uint8)  # (H, W, 3) or (H, W)
    a.flags.writeable = False  # shared by every caller through the cache
    return a


def _skimage_data():
    try:
        import skimage.data
    except ImportError:
        raise GankitError("natural photos come from scikit-image, which is not installed; "
                          "`pip install scikit-image`") from None
    return skimage.data
