"""Flow guidance for the interpolator (`interpolate.flow`): G sees, beside frames t-1 and t+1,
each of them warped halfway to the middle by Farneback optical flow
(`gankit.metrics.frames.halfway_warps`, the two halves of the classical `flow_warp` baseline),
and corrects the average of the two warps instead of the average of the raw frames. The
flow-based interpolators (Super SloMo, Jiang et al. 2018; RIFE, Huang et al. 2022) learn the flow
too; here the flow is the classical one and G learns where it fails (occlusions, the edges a
pan brings in, fast or overlapping motion) and which warp to trust there.

The warps of a training set are computed once, when it is loaded, and cached under
`gankit.util.cache_dir()` keyed by the SHA-256 of the frames, the Farneback parameters, OpenCV's
version and `WARPS_VERSION`, as float16 on 0..255 (steps of at most 1/8 of a level: rounding the
warps to uint8 would cost a flow-guided run 0.16 dB on `pans:test` before it learns anything).
moving-mnist's 36,000 triplets: 32.8 s on 2 cores and 563 MB; from the cache 0.9 s (measured
2026-12-01, AMD EPYC). A streamed training set
(`gankit.data.frames.streamed`) is warped batch by batch by the loader's workers, with the same
function and the same float16 rounding, so its numbers are these. Held-out frames and a user's
video are warped as they are used, in float32.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor

from gankit.data import to_model
from gankit.data.frames import Triplets
from gankit.metrics.frames import halfway_warps
from gankit.metrics.sr import FARNEBACK

WARPS_VERSION = "v2"  # bump when halfway_warps changes: it keys the cache files


def _key(t: Triplets) -> str:
    import cv2

    h = hashlib.sha256(repr((WARPS_VERSION, cv2.__version__, sorted(FARNEBACK.items()),
                             tuple(t.prev.shape))).encode())
    for x in (t.prev, t.next):
        h.update(x.cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def with_warps(t: Triplets) -> Triplets:
    """`t` with `warp_prev` / `warp_next` set (through the cache), and a note saying so."""
    from gankit.util import cache_dir, save_npz_atomic

    path = cache_dir() / f"warps-{_key(t)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            t.warp_prev, t.warp_next = torch.from_numpy(z["prev"]), torch.from_numpy(z["next"])
        made = "read from the cache"
    else:
        t.warp_prev, t.warp_next = (w.half() for w in halfway_warps(t.prev.cpu(), t.next.cpu()))
        save_npz_atomic(path, {"prev": t.warp_prev.numpy(), "next": t.warp_next.numpy()})
        made = "computed and cached"
    t.notes.append(f"flow guidance: both neighbours of {len(t)} triplets warped halfway by Farneback flow "
                   f"({made}: {path})")
    device = t.mid.device
    t.warp_prev, t.warp_next = t.warp_prev.to(device), t.warp_next.to(device)
    return t


def model_inputs(prev: Tensor, next_: Tensor, flow: bool, device) -> tuple[Tensor, Tensor, tuple | None]:
    """uint8 (N, C, H, W) neighbours -> G's inputs in model space on `device`: (prev, next,
    (prev warped, next warped) or None)."""
    warps = None
    if flow:
        wp, wn = halfway_warps(prev.cpu(), next_.cpu())
        warps = (to_model(wp.to(device), "image"), to_model(wn.to(device), "image"))  # 0..255 -> [-1, 1]
    return to_model(prev.to(device), "image"), to_model(next_.to(device), "image"), warps
