"""Optional standard Inception FID for RGB data, through the `torch-fidelity` extra.

gankit never downloads weights: point `--inception-weights` at the standard
`pt_inception-2015-12-05-6726825d.pth` file you obtained yourself. torch-fidelity depends on
torchvision, which cannot be installed beside some torch builds; without it this path says so in
one line and the rest of gankit's evaluation is unaffected.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.errors import GankitError


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


@torch.no_grad()
def inception_features(extractor, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 2048) pool features; grey images are repeated to RGB."""
    out = []
    for part in images.split(batch):
        if part.shape[1] == 1:
            part = part.expand(-1, 3, -1, -1)
        out.append(extractor(part)[0].float().cpu())
    return torch.cat(out)
