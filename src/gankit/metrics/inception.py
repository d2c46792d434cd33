"""Optional standard Inception FID for RGB data, through the `torch-fidelity` extra.

gankit never downloads weights: point `--inception-weights` at the standard
`pt_inception-2015-12-05-6726825d.pth` file you obtained yourself. torch-fidelity depends on
torchvision, which cannot be installed beside some torch builds; without it this path says so in
one line and the rest of gankit's evaluation is unaffected.

The resize to the network's 299 px input is a choice (`gankit.metrics.resize`): ``legacy`` leaves
it to torch-fidelity's network (TensorFlow-1-compatible bilinear, no antialiasing, as the original
FID code); ``clean`` resizes here with clean-fid's definition and hands the network float images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.metrics.resize import clean_resize

INPUT_SIZE = 299  # the FID Inception network's input side

# The network's modules from the normalised 299 px input to the 2048 pool features, in the order
# torch-fidelity's forward runs them: its forward only takes uint8 images, which clean-fid's float
# resize must not be rounded to.
_POOL3_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
                 "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                 "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")


def inception_extractor(weights: str | Path):
    """torch-fidelity's InceptionV3 (the TF-compatible FID network) loaded from a local file."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GankitError("--inception-weights needs the optional torch-fidelity package "
                          "(pip install torch-fidelity); gankit's own feature network needs nothing") from None
    path = Path(weights)
    if not path.is_file():
        raise GankitError(f"--inception-weights {path}: no such file (expected the standard "
                          "pt_inception-2015-12-05 weights)")
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                           feature_extractor_weights_path=str(path)).eval()
    except Exception as e:  # a file of the wrong format; torch-fidelity's errors are pages long
        raise GankitError(f"--inception-weights {path}: not InceptionV3 FID weights "
                          f"({str(e).splitlines()[0][:120]})") from None


def pool_features(extractor, x: torch.Tensor) -> torch.Tensor:
    """float (B, 3, 299, 299) in [0, 255] -> (B, 2048): torch-fidelity's forward after its resize."""
    dtype = next(extractor.parameters()).dtype
    x = (x.to(dtype) - 128) / 128  # the TF graph's input normalisation, as torch-fidelity does it
    for name in _POOL3_LAYERS:
        x = getattr(extractor, name)(x)
    return x.flatten(1).float()


@torch.no_grad()
def inception_features(extractor, images: torch.Tensor, batch: int = 100, resize: str = "legacy") -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, 2048) pool features; grey images are repeated to RGB. `resize`:
    legacy (torch-fidelity's own, inside the network) or clean (clean-fid's, here)."""
    out = []
    for part in images.split(batch):
        if part.shape[1] == 1:
            part = part.expand(-1, 3, -1, -1)
        if resize == "clean":
            out.append(pool_features(extractor, clean_resize(part, INPUT_SIZE)).cpu())
        else:
            out.append(extractor(part)[0].float().cpu())
    return torch.cat(out)
