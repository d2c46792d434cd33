"""The resize that brings images to a feature network's input size, the one choice on which FID
numbers of different tools disagree most (Parmar et al. 2022, "On Aliased Resizing and Surprising
Subtleties in GAN Evaluation").

Two modes, chosen with ``--resize``:

- ``legacy``: what each network did before the choice existed. For the Inception network that is
  torch-fidelity's TensorFlow-1-compatible bilinear resize without antialiasing, inside the network
  (the original TTUR FID code and clean-fid's ``legacy_tensorflow`` mode); for gankit's feature
  networks it is `gankit.media.images.resize_uint8` (torch's antialiased bilinear, rounded to uint8).
- ``clean``: clean-fid's definition, `make_resizer("PIL", False, "bicubic", size)`: each channel
  becomes a float32 PIL image (mode ``F``), is resized with PIL's bicubic filter (which widens its
  support when it shrinks, i.e. antialiases) and clipped to [0, 255], never quantised back to uint8.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

RESIZE_MODES = ("legacy", "clean")


def clean_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, size, size) in [0, 255], clean-fid's resize.

    Each channel is resized alone in PIL's float mode: a uint8 RGB resize would round every output
    pixel, which is the quantisation clean-fid set out to remove."""
    x = images.detach().cpu().numpy()
    out = np.empty((x.shape[0], x.shape[1], size, size), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            im = Image.fromarray(x[i, c].astype(np.float32))  # a float32 array makes a mode "F" image
            # PIL takes (width, height); an image already at `size` comes back unchanged
            out[i, c] = np.asarray(im.resize((size, size), resample=Image.Resampling.BICUBIC))
    return torch.from_numpy(out.clip(0, 255))  # bicubic overshoots at edges: clipped as clean-fid does
