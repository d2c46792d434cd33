"""Mode coverage on the 2-D toy distributions (ring8, grid25), as in the Unrolled GAN (Metz et
al. 2017) and VEEGAN (Srivastava et al. 2017) papers.

A sample is *high quality* when it lies within 3 standard deviations of its nearest mode. A mode
is *covered* when it receives at least `min_share` of its fair share of the high-quality samples
(fair share = n / K for n samples and K modes); the default 0.1 keeps a handful of stray samples
from counting as a captured mode.
"""

from __future__ import annotations

import torch

from gankit.data.synthetic import toy_modes


def mode_stats(points: torch.Tensor, name: str, min_share: float = 0.1) -> dict:
    """{"modes": covered, "n_modes": K, "hq": share of high-quality samples, "per_mode": counts}
    for generated points (N, 2) of the toy distribution `name`."""
    centres, std = toy_modes(name)
    p = points.detach().float().cpu()
    d = torch.cdist(p, centres)  # (N, K)
    dist, nearest = d.min(1)
    hq = dist <= 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(centres))
    fair = len(p) / len(centres)
    return {"modes": int((counts >= max(1.0, min_share * fair)).sum()), "n_modes": len(centres),
            "hq": float(hq.float().mean()), "per_mode": counts.tolist()}
