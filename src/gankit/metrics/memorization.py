"""The memorisation check: are a generator's samples copies of its training images?

For each sample, its nearest training image and the distance to it; beside that, the same
nearest-training-image distance for held-out real images, which the generator never saw (the
reference: how close a new, genuine image from the data's distribution comes to the training set).
A generator that copies sits much closer to the training set than held-out images do; one that
generalises sits about as close; one that has not learnt the data sits farther.

Distances: ``pixel``, the root-mean-square difference of the two images on a 0-1 scale,
||a - b||_2 / (255 sqrt(C H W)), at the run's resolution (at most PIXEL_MAX px); and, where a feature network applies
(`gankit.metrics.featurenet`), ``features``, the Euclidean distance between its embeddings.

The numbers: the samples' share closer to their nearest training image than the nearest
`quantile` of held-out images are (the held-out distances' order statistic j = ceil(q K) of K).
Were the samples distributed as the held-out images are, that share would be at most about
`chance_limit`: the 99.9% point of Beta(j, K - j + 1) (the share of the distribution below the
j-th of K draws) plus three binomial standard deviations for the N samples. Nearness alone also
catches blur (a smooth, average face is near every training face), so copying is flagged only
when a second share is above chance as well: samples whose nearest / second-nearest training
image distance ratio is below the held-out images' (a copy is near ONE training image).

Limits: with few held-out images the chance limit is loose (20 images: 35% or so), so the check
catches wholesale copying, not a few copied samples; copies shifted, flipped (unless the training
set was mirrored), recoloured or cropped, and copies of parts, are not caught.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.media.images import resize_uint8

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)
# pixel distance at most at this side: a copy at 1024 px is a copy at 64, and 10,000 samples'
# vectors stay ~0.5 GB (RGB float32) whatever the resolution
PIXEL_MAX = 64
GRID_PAIRS = 32  # sample / nearest-training-image pairs in the picture, closest first
PICTURE_MAX = 128  # the picture's images are downscaled to this height

# A run's data source -> its held-out split, for the sources that have one. mnist@N is part of
# MNIST's training set, so its held-out images are the test set as well (fashion-mnist@N alike).
HELD_OUT = {"lfw": "lfw:test", "lfw:train": "lfw:test", "mnist": "mnist:test", "mnist:train": "mnist:test",
            "fashion-mnist": "fashion-mnist:test", "fashion-mnist:train": "fashion-mnist:test",
            "stacked-mnist": "stacked-mnist:test", "spoken-digits-spec": "spoken-digits-spec:test",
            "phantoms-lesion": "phantoms-lesion:test", "phantoms-lesion:train": "phantoms-lesion:test"}


def held_out_source(train_source: str) -> str | None:
    """The held-out split of a named data source (``lfw`` -> ``lfw:test``), or None."""
    base, at, _ = train_source.partition("@")
    if at and base in ("mnist", "fashion-mnist", "phantoms-lesion"):
        return f"{base}:test"
    return HELD_OUT.get(train_source)


def pixel_vectors(images: Tensor) -> Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C*H'*W') on a 0-1 scale divided by sqrt(C*H'*W'), so that
    Euclidean distance between rows is the RMS pixel difference; images above PIXEL_MAX px are
    first downscaled to it (antialiased), as every set compared is."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise GankitError(f"memorization: expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if max(images.shape[-2:]) > PIXEL_MAX:
        h, w = images.shape[-2:]
        images = resize_uint8(images, (round(h * PIXEL_MAX / max(h, w)), round(w * PIXEL_MAX / max(h, w))))
    d = images[0].numel()
    return images.reshape(len(images), d).float().div_(255.0 * math.sqrt(d))


def training_images(train: Tensor, idx: Tensor) -> Tensor:
    """The training images that `nearest` indices name: i < M is train[i], i >= M train[i - M] mirrored."""
    m = len(train)
    out = train[idx % m]
    flipped = idx >= m
    if bool(flipped.any()):
        out[flipped] = out[flipped].flip(-1)
    return out


def nearest(queries: Tensor, train: Tensor, vectors: Callable[[Tensor], Tensor], mirror: bool = False,
            chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """For each uint8 image of `queries` (N, C, H, W), its two nearest images of `train` (M, C, H, W)
    under the Euclidean distance between `vectors(images)` rows: (distances float64 (N, 2), indices
    int64 (N, 2)), nearest first. `mirror`: an image and its mirror are one training image, the
    nearer counting; index i + M names train[i] mirrored (`training_images`).

    The training set is read `chunk` images at a time (memory: N x chunk distances plus one chunk's
    vectors), keeping the best two so far; the search runs in float32 and the two distances found
    are then recomputed in float64, since float32's |a|^2 + |b|^2 - 2ab cancels badly exactly where
    it matters: near-copies at distance ~0."""
    m = len(train)
    if m < 2:
        raise GankitError(f"memorization needs at least 2 training images; got {m}")
    q64 = vectors(queries).double()  # (N, F)
    q = q64.float()
    best_d = torch.full((len(q), 2), float("inf"))
    best_i = torch.zeros((len(q), 2), dtype=torch.long)
    for s in range(0, m, chunk):
        part = train[s:s + chunk]
        d = torch.cdist(q, vectors(part).float())  # (N, c)
        i = torch.arange(s, s + len(part)).expand_as(d)
        if mirror:
            d_flip = torch.cdist(q, vectors(part.flip(-1)).float())
            i = torch.where(d_flip < d, i + m, i)
            d = torch.minimum(d, d_flip)
        cand_d, cand_i = torch.cat([best_d, d], 1), torch.cat([best_i, i], 1)
        top = cand_d.topk(2, dim=1, largest=False).indices  # (N, 2)
        best_d, best_i = cand_d.gather(1, top), cand_i.gather(1, top)
    used, where = best_i.unique(return_inverse=True)  # vectors once per training image found
    v = vectors(training_images(train, used)).double()  # (U, F)
    dist = (q64[:, None] - v[where]).norm(dim=-1)  # (N, 2)
    return dist, best_i


def _beta_ppf(p: float, a: int, b: int) -> float:
    from scipy.stats import beta

    return float(beta.ppf(p, a, b))


def share_test(s: np.ndarray, h: np.ndarray, quantile: float) -> dict:
    """Share of `s` below the held-out values `h`'s j-th smallest (j = ceil(quantile K)), and the
    most that share reaches by chance were `s` distributed as `h` is (see the module docstring)."""
    k, n = len(h), len(s)
    j = max(1, math.ceil(quantile * k))
    threshold = float(np.sort(h)[j - 1])
    hi = _beta_ppf(0.999, j, k - j + 1)
    limit = min(1.0, hi + 3 * math.sqrt(hi * (1 - hi) / n))
    share = float((s < threshold).mean())
    return {"threshold": threshold, "share_below": share, "chance_limit": limit, "above_chance": share > limit}


def _quantiles(x: np.ndarray) -> dict:
    return {f"q{int(q * 100):02d}": float(np.quantile(x, q)) for q in QUANTILES} | {"n": len(x)}


def compare(sample_d: Tensor, held_d: Tensor, quantile: float = 0.05) -> dict:
    """The two distributions side by side, and the verdict's numbers. `sample_d`, `held_d`: (N, 2)
    and (K, 2) distances to the nearest and second-nearest training image.

    Nearness alone does not tell copying from blur: a smooth, average image is close to every
    training image. A copy is close to ONE training image, so its nearest / second-nearest ratio is
    far below the held-out images' (Lowe's ratio test); an average image's ratio is near 1. So
    copying is flagged when both shares are above chance: samples closer to the training set than
    held-out images are, and samples nearer one training image than held-out images are."""
    s, h = sample_d[:, 0].double().numpy(), held_d[:, 0].double().numpy()
    s_ratio = (sample_d[:, 0] / sample_d[:, 1].clamp_min(1e-12)).numpy()
    h_ratio = (held_d[:, 0] / held_d[:, 1].clamp_min(1e-12)).numpy()
    n, k = len(s), len(h)
    near = share_test(s, h, quantile)
    one = share_test(s_ratio, h_ratio, quantile)
    med_s, med_h = float(np.median(s)), float(np.median(h))
    # Mann-Whitney U of samples vs held-out as a z-score (no tie correction; distances are continuous):
    # well below 0, samples are systematically closer to the training set (Meehan et al. 2020's C_T)
    ranks = torch.from_numpy(np.concatenate([s, h])).argsort().argsort().double().numpy() + 1
    u = ranks[:n].sum() - n * (n + 1) / 2
    z = (u - n * k / 2) / math.sqrt(n * k * (n + k + 1) / 12)
    return {
        "samples": _quantiles(s),  # distance to the nearest training image
        "held_out": _quantiles(h),
        "threshold": near["threshold"],  # the held-out distances' j-th smallest, j = ceil(quantile * K)
        "share_below": near["share_below"],  # samples closer than that
        "chance_limit": near["chance_limit"],  # the most share_below reaches for samples like held-out images
        "median_ratio": med_s / med_h if med_h > 0 else float("inf"),
        "mann_whitney_z": float(z),
        "nn_ratio": {"samples_median": float(np.median(s_ratio)), "held_out_median": float(np.median(h_ratio)),
                     "threshold": one["threshold"], "share_below": one["share_below"],
                     "chance_limit": one["chance_limit"]},
        "closer": near["above_chance"],
        "copying": near["above_chance"] and one["above_chance"],
    }


def verdict(name: str, c: dict, quantile: float) -> str:
    """One line that says what the numbers show and no more."""
    pct = f"{c['share_below']:.1%} of samples are closer to a training image than the nearest {quantile:.0%} of " \
          f"held-out real images ({c['held_out']['n']}) are"
    r = c["nn_ratio"]
    if c["copying"]:
        return (f"{name}: COPYING SUSPECTED: {pct} (at most {c['chance_limit']:.1%} by chance), and "
                f"{r['share_below']:.1%} are that much nearer one training image than to the next (at most "
                f"{r['chance_limit']:.1%} by chance); look at the pairs")
    if c["closer"]:
        return (f"{name}: closer to the training set than held-out images, but not to any one training image: "
                f"{pct}, yet only {r['share_below']:.1%} are unusually nearer one image than the next (median "
                f"nearest/second ratio {r['samples_median']:.2f}, held-out {r['held_out_median']:.2f}): smooth or "
                "averaged samples, not copies; look at the pairs")
    line = f"{name}: no sign of wholesale copying: {pct} (flagged above {c['chance_limit']:.1%})"
    if c["share_below"] > 2 * quantile:
        line += f"; that is more than the {quantile:.0%} held-out-like samples would give, but too few to tell " \
                f"from chance with {c['held_out']['n']} held-out images: look at the pairs"
    if c["median_ratio"] > 1.5:
        line += f"; samples sit {c['median_ratio']:.1f}x farther from the training set than held-out images do " \
                "(they do not look like the data yet)"
    return line


@dataclass
class Memorization:
    """The check's result: per distance, each sample's nearest training image and its distance
    (and the held-out images' distances), the comparison and the verdict lines."""

    # name -> {sample_d (N, 2), sample_idx (N, 2), held_d (K, 2)}: nearest and second-nearest training image
    distances: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)  # name -> `compare`'s dict
    verdicts: list[str] = field(default_factory=list)
    protocol: dict = field(default_factory=dict)
    train: Tensor | None = field(default=None, repr=False)  # the training images searched, uint8

    @property
    def copying(self) -> bool:
        return any(s["copying"] for s in self.scores.values())

    def summary(self) -> dict:
        """JSON-ready: the scores per distance, the verdicts, the protocol."""
        return {**self.scores, "copying": self.copying, "verdict": self.verdicts, "protocol": self.protocol}


def memorization(samples: Tensor, train: Tensor, held_out: Tensor, quantile: float = 0.05, mirror: bool = False,
                 embed: Callable[[Tensor], Tensor] | None = None, embed_name: str | None = None) -> Memorization:
    """Check uint8 `samples` (N, C, H, W) for copies of `train` (M, C, H, W) against `held_out`
    (K, C, H, W) real images the generator never saw, all at one shape. `mirror`: the training set
    was x-flipped in training, so flipped training images count as training images. `embed`:
    uint8 images -> (N, F) features for the feature distance (named `embed_name`)."""
    for name, x in (("training images", train), ("held-out images", held_out)):
        if x.shape[1:] != samples.shape[1:]:
            raise GankitError(f"memorization: {name} are {tuple(x.shape[1:])}, samples {tuple(samples.shape[1:])}; "
                              "they must be compared at one shape")
    if len(held_out) < 2 or len(samples) < 2:
        raise GankitError(f"memorization needs at least 2 samples and 2 held-out images; got {len(samples)} and "
                          f"{len(held_out)}")
    if not 0 < quantile < 1:
        raise GankitError(f"memorization quantile {quantile}: expected a number between 0 and 1")
    out = Memorization(train=train)
    spaces: list[tuple[str, Callable[[Tensor], Tensor]]] = [("pixel", pixel_vectors)]
    if embed is not None:
        spaces.append(("features", embed))
    for name, f in spaces:
        sample_d, sample_idx = nearest(samples, train, f, mirror)  # (N, 2) each
        held_d, _ = nearest(held_out, train, f, mirror)  # (K, 2)
        out.distances[name] = {"sample_d": sample_d, "sample_idx": sample_idx, "held_d": held_d}
        out.scores[name] = compare(sample_d, held_d, quantile)
        out.verdicts.append(verdict(name, out.scores[name], quantile))
    side = max(samples.shape[-2:])
    out.protocol = {"n": len(samples), "train_n": len(train), "held_out_n": len(held_out),
                    "shape": list(samples.shape[1:]), "quantile": quantile, "mirror": mirror,
                    "distances": {"pixel": "RMS pixel difference, 0-1 scale"
                                  + (f", at {PIXEL_MAX} px (downscaled from {side})" if side > PIXEL_MAX else ""),
                                  **({"features": f"Euclidean, {embed_name} features"} if embed is not None else {})}}
    return out


def save_pictures(result: Memorization, samples: Tensor, out_dir: str | Path, pairs: int = GRID_PAIRS) -> dict:
    """Write OUT_DIR/nearest.png (the `pairs` samples closest to the training set by pixel distance,
    each left of its nearest training image, closest first) and OUT_DIR/distances.png (histograms
    of the samples' and held-out images' distances, per distance). Returns {name: path}."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gankit.viz import _savefig, make_grid, save_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    px = result.distances["pixel"]
    order = px["sample_d"][:, 0].argsort()[:pairs]
    pair = torch.cat([samples[order], training_images(result.train, px["sample_idx"][order, 0])], dim=-1)  # (P, C, H, 2W)
    if samples.shape[-2] > PICTURE_MAX:  # a picture to look at, not a 64-megapixel file
        pair = resize_uint8(pair, (PICTURE_MAX, 2 * PICTURE_MAX * samples.shape[-1] // samples.shape[-2]))
    grid = make_grid(pair, nrow=4, pad=3)
    nearest_png = save_image(grid, out_dir / "nearest.png", upscale=max(1, min(4, 512 // max(grid.shape[:2]))))

    fig = Figure(figsize=(5 * len(result.distances), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, (name, d) in enumerate(result.distances.items()):
        ax = fig.add_subplot(1, len(result.distances), i + 1)
        s, h = d["sample_d"][:, 0].numpy(), d["held_d"][:, 0].numpy()
        bins = np.linspace(0, max(s.max(), h.max()) * 1.05 or 1.0, 40)
        ax.hist(s, bins=bins, density=True, alpha=0.6, color="tab:blue", label=f"samples ({len(s)})")
        ax.hist(h, bins=bins, density=True, alpha=0.6, color="tab:orange", label=f"held-out real ({len(h)})")
        ax.axvline(result.scores[name]["threshold"], color="k", ls="--", lw=1, label="held-out threshold")
        ax.set_xlabel(f"{name} distance to the nearest training image")
        ax.set_ylabel("density")
        sc = result.scores[name]
        ax.set_title(("COPYING SUSPECTED" if sc["copying"] else "closer, not copies" if sc["closer"]
                      else "no wholesale copying")
                     + f": {result.scores[name]['share_below']:.1%} below", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    hist_png = _savefig(fig, out_dir / "distances.png")
    return {"nearest": str(nearest_png), "distances": str(hist_png)}


def _family(source: str) -> str:
    return source.split("@")[0].split(":")[0]


def evaluate_memorization(samples: Tensor, train: str, held_out: str, out_dir: str | Path, featurenet: str | None = None,
                          device: str = "cpu", mirror: bool = False, quantile: float = 0.05, seed: int = 0,
                          run: str | None = None, step: int | None = None) -> dict:
    """`gankit eval --metrics memorization`: load the data sources `train` and `held_out` at the
    samples' shape, check, write the pictures under `out_dir`; the JSON-ready result.

    The feature distance is added where a feature network applies: the one named by `featurenet`,
    or the bundled one when the training data is what it was trained on (MNIST and its splits);
    on anything else its embedding says little, and pixel distance alone is reported."""
    from gankit.data import load_data

    c, h, w = samples.shape[1:]
    if h != w:
        raise GankitError(f"memorization: samples are {h}x{w}; the training images are conformed to a square side")
    sets = {}
    for role, source in (("training", train), ("held-out", held_out)):
        data = load_data(source, resolution=h, channels=c)
        if data.kind != "image":
            raise GankitError(f"memorization: {role} source {source!r} holds 2-D points; it needs images")
        sets[role] = data.x
    embed, embed_name, net_meta = feature_embedding(train, featurenet, device)
    result = memorization(samples, sets["training"], sets["held-out"], quantile, mirror, embed, embed_name)
    result.protocol.update({"train": train, "held_out": held_out, **net_meta, "seed": seed, "run": run, "step": step})
    out = result.summary()
    out["files"] = save_pictures(result, samples, out_dir)
    return out


def feature_embedding(train: str, featurenet: str | None, device: str = "cpu") -> tuple[Callable | None, str | None, dict]:
    """(embed, its name, protocol entries) for the feature distance: the network `featurenet`, or
    the bundled one when the training source `train` is what it was trained on; (None, None, {})
    where no feature network applies (pixel distance alone)."""
    from gankit.metrics.evaluate import Evaluator
    from gankit.metrics.featurenet import bundled_featurenet_path

    if not (featurenet or _family(train) == _family(_bundled_data(bundled_featurenet_path()))):
        return None, None, {}
    ev = Evaluator(featurenet, device)
    return (lambda x: ev.features(x).feats), ev.net_name, {"feature_net": ev.net_name,
                                                            "feature_net_sha256": ev.meta["sha256"]}


def _bundled_data(path: Path) -> str:
    """The data source the bundled feature network was trained on (its sidecar's "data")."""
    import json

    try:
        return str(json.loads(path.with_suffix(".json").read_text()).get("data", ""))
    except (OSError, ValueError):
        return ""
