"""Distribution metrics on feature tensors: k-NN radii, improved precision/recall (Kynkäänniemi
et al. 2019), density/coverage (Naeem et al. 2020), class-histogram KL, and Stacked MNIST mode
counts (PacGAN, Lin et al. 2018).

Features are float tensors (N, F); how they were extracted (Inception, a classifier) is not this
module's business. All distances are Euclidean and computed in float64 in row chunks, so a
10,000 x 10,000 distance matrix never exists at once: peak extra memory is about
`chunk * N * 8` bytes. float64 because the chunks go through `torch.cdist`'s matmul path
(|a|^2 + |b|^2 - 2 a.b), whose cancellation in float32 moves points across ball boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def _check_feats(name: str, x: Tensor, min_rows: int = 1) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"{name}: expected features of shape (N, F), got {tuple(x.shape)}")
    if len(x) < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} rows, got {len(x)}")
    return x.detach().to(torch.float64)


def _check_chunk(chunk: int) -> None:
    if chunk < 1:
        raise ValueError(f"chunk = {chunk}; expected a number of rows >= 1")


def _dist_chunks(a: Tensor, b: Tensor, chunk: int) -> Iterator[tuple[int, Tensor]]:
    """Yield (start, ||a[start:start+c] - b||) as (c, len(b)) blocks, c <= chunk."""
    for s in range(0, len(a), chunk):
        yield s, torch.cdist(a[s:s + chunk], b)  # (c, M)


def _radii(x: Tensor, k: int, chunk: int) -> Tensor:
    # x is already float64 (N, F)
    if not 1 <= k < len(x):
        raise ValueError(f"k = {k}; expected 1 <= k <= N - 1 = {len(x) - 1} for {len(x)} points")
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for s, d in _dist_chunks(x, x, chunk):
        # the (k+1)-th smallest: index 0 is the point's own zero distance (or a duplicate's)
        out[s:s + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def knn_radii(feats: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """NND_k(x_i) = distance from x_i to its k-th nearest neighbour in `feats`, itself excluded
    (the (k+1)-th smallest distance counting the zero self-distance). (N, F) -> (N,) float64."""
    _check_chunk(chunk)
    return _radii(_check_feats("feats", feats), k, chunk)


def _share_inside(points: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> float:
    """Fraction of `points` inside at least one ball B(centres_i, radii_i) (boundary included)."""
    inside = 0
    for _, d in _dist_chunks(points, centres, chunk):  # (c, N)
        inside += int((d <= radii).any(1).sum())
    return inside / len(points)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk: int = 2048) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    precision = (1/M) sum_j 1[exists i: ||f_j - r_i|| <= NND_k(r_i)]   (fakes on the real manifold)
    recall    = (1/N) sum_i 1[exists j: ||r_i - f_j|| <= NND_k(f_j)]   (reals on the fake manifold)
    with each set's radii taken within that set."""
    _check_chunk(chunk)
    r, f = _check_feats("real", real), _check_feats("fake", fake)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real has {r.shape[1]} features per sample, fake has {f.shape[1]}")
    precision = _share_inside(f, r, _radii(r, k, chunk), chunk)
    recall = _share_inside(r, f, _radii(f, k, chunk), chunk)
    return precision, recall


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 2048) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), both on the real balls B(r_i, NND_k(r_i)).

    density  = (1/(k M)) sum_j sum_i 1[f_j in B(r_i, NND_k(r_i))]   (can exceed 1)
    coverage = (1/N) sum_i 1[exists j: f_j in B(r_i, NND_k(r_i))]"""
    _check_chunk(chunk)
    r, f = _check_feats("real", real), _check_feats("fake", fake)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real has {r.shape[1]} features per sample, fake has {f.shape[1]}")
    radii = _radii(r, k, chunk)  # (N,)
    hits = 0
    covered = torch.zeros(len(r), dtype=torch.bool, device=r.device)  # (N,)
    for _, d in _dist_chunks(f, r, chunk):  # (c, N): chunk over fakes, every real ball at once
        inside = d <= radii
        hits += int(inside.sum())
        covered |= inside.any(0)
    return hits / (k * len(f)), float(covered.double().mean())


def class_histogram(labels: Tensor, n_classes: int) -> Tensor:
    """p[c] = (1/N) #{i: labels_i = c}, a (n_classes,) float64 histogram summing to 1."""
    labels = labels.detach().reshape(-1).long()
    if len(labels) == 0:
        raise ValueError("class_histogram: no labels")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"class_histogram: labels span {int(labels.min())}..{int(labels.max())}; "
                         f"expected 0..{n_classes - 1}")
    return torch.bincount(labels, minlength=n_classes).double() / len(labels)


def class_kl(p_fake: Tensor, p_real: Tensor, eps: float = 1e-10) -> float:
    """KL(p_fake || p_real) = sum_c p_fake[c] log(p_fake[c] / max(p_real[c], eps)), 0 log 0 = 0.

    This direction (generated against reference, as in the Unrolled GAN and PacGAN tables) is
    finite and readable for mode collapse: one class against a uniform 10-class reference scores
    1 * log(1 / 0.1) = ln 10, and dropping modes costs log(K / kept). The reverse direction would
    put the missing classes' mass over p_fake = 0 and be set by eps alone. eps only matters where
    the generator puts mass on a class the reference never shows; there it is a large finite
    penalty (about p * 23 for eps = 1e-10) rather than inf."""
    p, q = p_fake.detach().double().reshape(-1), p_real.detach().double().reshape(-1)
    if p.shape != q.shape:
        raise ValueError(f"class_kl: histograms have {len(p)} and {len(q)} classes")
    q = q.clamp_min(eps)
    # where p = 0 the term is 0 (0 log 0 = 0); torch.where keeps 0 * log(0) = nan out of the sum
    terms = torch.where(p > 0, p * torch.log(p / q), torch.zeros_like(p))
    return float(terms.sum())


def stacked_modes(digit_labels: Tensor) -> dict:
    """Stacked MNIST modes (PacGAN, Lin et al. 2018): mode = 100 d0 + 10 d1 + d2 in 0..999 from
    the classified digit of each channel, digit_labels (N, 3).

    {"modes": distinct modes with >= 1 sample, "kl": KL(p_generated || uniform over 1000), "n": N}"""
    d = digit_labels.detach().long()
    if d.dim() != 2 or d.shape[1] != 3 or len(d) == 0:
        raise ValueError(f"stacked_modes: expected digit labels of shape (N, 3), got {tuple(d.shape)}")
    if d.min() < 0 or d.max() > 9:
        raise ValueError(f"stacked_modes: digits span {int(d.min())}..{int(d.max())}; expected 0..9")
    ids = 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]  # (N,)
    p = class_histogram(ids, 1000)
    uniform = torch.full_like(p, 1 / 1000)
    return {"modes": int((p > 0).sum()), "kl": class_kl(p, uniform), "n": len(d)}

