"""`gankit augment-eval`: does synthetic data from a low-data conditional GAN help a classifier
more than classical augmentation does?

For each n (labelled real training images, n/K per class), a class-conditional GAN (preset
``cgan``) is trained on those n images only (``data.source=mnist@n``; a user's folder: the n
chosen images written to ``OUT/data/n{n}.npz``), and then a small CNN classifier with one fixed
recipe (`Recipe`) is trained on each arm:

1. ``real``: the n real images;
2. ``classical``: real + classical augmentation (`classical_augment`: shifts, small rotations,
   elastic distortion, Simard et al. 2003), applied on the fly to every real training image;
3. ``synth``: real + synthetic, ratio r x n synthetic images (r/K x n per class), for each r;
4. ``classical+synth``: 3 with classical augmentation of the real images (synthetic images are
   not augmented);
5. ``synth-only``: n synthetic images (n/K per class) and no real image: the Classification
   Accuracy Score (Ravuri & Vinyals 2019).

Test accuracy is on the held-out test set (MNIST's 10,000), mean and std over the classifier
seeds. The ratio reported for arms 3 and 4 is picked without the test set: the n images are
split, stratified, into train (1 - val_fraction) and validation parts; classifiers of arms 3/4
are trained on the train part (+ synthetic at r x its size) for every r and seed, and the r with
the best mean validation accuracy is chosen (ties: the smaller r). Every ratio is reported, the
chosen one marked. The GAN (one per n, seed `GAN_SEED`) is trained on all n images, so it has
seen the validation images: a caveat recorded in the JSON.

Arm 2 is the bar: the JSON says, per n, whether each synthetic arm's mean beats it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from gankit.errors import GankitError

if TYPE_CHECKING:
    import torch

ARMS = {  # key -> label; in report order
    "real": "1 real",
    "classical": "2 real + classical",
    "synth": "3 real + synthetic",
    "classical+synth": "4 real + classical + synthetic",
    "synth-only": "5 synthetic only (CAS)",
}
RATIO_ARMS = ("synth", "classical+synth")
DEFAULT_NS = (100, 500, 1000)
DEFAULT_RATIOS = (0.5, 1.0, 4.0)
GAN_SEED = 0  # one GAN per n
SYNTH_SEED = 0  # the synthetic pool of each n, drawn once
SPLIT_SEED = 0  # the stratified train/validation split of the n images
GAN_PRESET = "cgan"
GAN_BATCH = 64  # cgan's train.batch; lowered to n when n is smaller
GAN_SETS = {"model.g_width": 32, "model.d_width": 32}  # over the preset: half its widths, to fit the CPU budget


@dataclass(frozen=True)
class Classical:
    """Classical augmentation, every op applied to every image with a random magnitude."""

    shift: float = 2.0  # px: translation uniform in [-shift, shift] on each axis
    rotate: float = 10.0  # degrees: rotation uniform in [-rotate, rotate] about the centre
    alpha: float = 34.0  # px: elastic displacement scale (Simard et al. 2003's alpha for MNIST)
    sigma: float = 4.0  # px: std of the Gaussian that smooths the U[-1, 1] displacement fields


@dataclass(frozen=True)
class Recipe:
    """The classifier recipe, the same for every arm: `small_cnn` trained for a fixed number of Adam steps (one-cycle LR peaking at `lr`) on batches drawn
    uniformly with replacement from the arm's training pool."""

    steps: int = 400
    batch: int = 64
    lr: float = 3e-3
    width: int = 16


@dataclass(frozen=True)
class Budget:
    gan_steps: int  # GAN training steps (one D and one G update each), batch min(64, n)
    recipe: Recipe
    seeds: int  # classifier seeds 0..seeds-1
    test_n: int | None  # test images scored (None: all)


FULL = Budget(gan_steps=3000, recipe=Recipe(), seeds=3, test_n=None)
QUICK = Budget(gan_steps=4, recipe=Recipe(steps=6, batch=16), seeds=1, test_n=500)
HELP_BUDGETS = (f"default budgets: GAN preset {GAN_PRESET} with "
                + ", ".join(f"{k}={v}" for k, v in GAN_SETS.items())
                + f", {FULL.gan_steps} steps at batch min({GAN_BATCH}, n), seed {GAN_SEED}, one GAN per n; "
                f"classifier small CNN width {FULL.recipe.width}, {FULL.recipe.steps} Adam steps of batch "
                f"{FULL.recipe.batch}, one-cycle lr {FULL.recipe.lr:g}; {FULL.seeds} classifier seeds; the whole "
                f"test set. --quick: GAN {QUICK.gan_steps} steps, classifier {QUICK.recipe.steps} steps of batch "
                f"{QUICK.recipe.batch}, {QUICK.seeds} seed, {QUICK.test_n} test images (a smoke run). Measured on 2 CPU "
                "cores: n=100 6.3 min, n=1000 6.7 min (a GAN of about 2.5 min, then 45 classifiers per n)")


# ---- classical augmentation ---------------------------------------------------------------

def _gauss_smooth(d: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 2, H, W) fields, reflect-padded, truncated at 3 sigma."""
    import torch
    import torch.nn.functional as F

    if sigma <= 0:
        return d
    H, W = d.shape[-2:]
    r = max(1, min(int(3 * sigma + 0.5), H - 1, W - 1))
    t = torch.arange(-r, r + 1, dtype=d.dtype, device=d.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = d.shape[1]
    d = F.conv2d(F.pad(d, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(d, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def classical_augment(x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      params: Classical = Classical()) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random shift, rotation and elastic distortion of float images (B, C, H, W) in [-1, 1]
    (-1 = black, also what enters at the borders); one bilinear resampling. Labels `y` are
    returned unchanged (these transforms keep a digit's class). Randomness from `generator`
    (on x's device)."""
    import torch
    import torch.nn.functional as F

    B, C, H, W = x.shape
    dev, dt = x.device, x.dtype
    u = torch.rand(B, 3, generator=generator, device=dev, dtype=dt) * 2 - 1  # (B, 3) in [-1, 1)
    angle = u[:, 0] * math.radians(params.rotate)
    tx, ty = u[:, 1] * params.shift * 2 / W, u[:, 2] * params.shift * 2 / H  # px -> normalised coords
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output (x, y) reads input at R (x, y) + t, in normalised coordinates (square images: no aspect fix)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)  # (B, H, W, 2)
    if params.alpha > 0:
        d = torch.rand(B, 2, H, W, generator=generator, device=dev, dtype=dt) * 2 - 1
        d = _gauss_smooth(d, params.sigma) * params.alpha  # (B, 2, H, W) displacement in px (dx, dy)
        grid = grid + torch.stack([d[:, 0] * 2 / W, d[:, 1] * 2 / H], -1)
    out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    return out, y


# ---- the classifier -----------------------------------------------------------------------

def small_cnn(in_channels: int, n_classes: int, resolution: int, width: int = 16):
    """The classifier of every arm: two conv3x3-ReLU-maxpool2 stages (w, 2w channels), dropout 0.3,
    Linear(2w x (H/4)^2 -> 128)-ReLU, Linear(128 -> K). Float images in [-1, 1]. Small on purpose:
    ~1 MFLOP per 28 px image, so 5 arms x 3 ratios x 3 seeds fit a 2-core CPU budget."""
    import torch.nn as nn

    w, side = width, resolution // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * w * side * side, 128), nn.ReLU(inplace=True),
        nn.Linear(128, n_classes))


def train_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, recipe: Recipe, seed: int,
                     augment: torch.Tensor | None = None, params: Classical = Classical()):
    """Train `small_cnn` on uint8 images `x` (N, C, H, W), labels `y`, with `recipe`; `augment`
    (bool (N,)) marks the examples that get `classical_augment` each time they are drawn.
    Deterministic for a seed on CPU; the caller's global RNG state is kept."""
    import torch
    import torch.nn.functional as F

    device = x.device
    C, H, W = x.shape[1:]
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # init and dropout draw from the global RNG
        torch.manual_seed(seed)
        g = torch.Generator(device=device).manual_seed(seed)
        net = small_cnn(C, n_classes, H, recipe.width).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps)
        net.train()
        for _ in range(recipe.steps):
            idx = torch.randint(len(x), (recipe.batch,), generator=g, device=device)
            xb, yb = x[idx].float().div_(127.5).sub_(1.0), y[idx]
            if augment is not None:
                m = augment[idx]
                if bool(m.any()):
                    xb[m] = classical_augment(xb[m], None, g, params)[0]
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def accuracy(net, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    import torch

    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            pred = net(x[i:i + batch].float().div_(127.5).sub_(1.0)).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return correct / len(x)


# ---- inputs -------------------------------------------------------------------------------

def parse_ns(text: str | list) -> list:
    """"100,500,1000,all" -> [100, 500, 1000, "all"]; one-line errors."""
    items = text if isinstance(text, (list, tuple)) else [s.strip() for s in str(text).split(",") if s.strip()]
    out = []
    for s in items:
        if s == "all":
            out.append("all")
            continue
        try:
            v = int(s)
        except (TypeError, ValueError):
            raise GankitError(f"--n {s!r}: expected numbers of labelled images (e.g. 100,500,1000) or 'all'") from None
        if v < 1:
            raise GankitError(f"--n {v}: expected a number of labelled images >= 1")
        out.append(v)
    if not out:
        raise GankitError("--n: give at least one number of labelled images, e.g. --n 100,1000")
    return out


def parse_ratios(text: str | list) -> list[float]:
    items = text if isinstance(text, (list, tuple)) else [s.strip() for s in str(text).split(",") if s.strip()]
    out = []
    for s in items:
        try:
            r = float(s)
        except (TypeError, ValueError):
            raise GankitError(f"--ratios {s!r}: expected numbers > 0 (synthetic images per real image), e.g. 0.5,1,4") from None
        if not r > 0 or not math.isfinite(r):
            raise GankitError(f"--ratios {s}: a ratio must be > 0 (synthetic images per real image)")
        out.append(r)
    if not out:
        raise GankitError("--ratios: give at least one ratio > 0, e.g. 0.5,1,4")
    return sorted(set(out))


def _load_sources(data: str | None, test: str | None):
    """(train Dataset, test Dataset, is_mnist): MNIST by default, or a labelled folder and its test folder."""
    from gankit.data import load_data
    from gankit.models import CONV_RESOLUTIONS

    if data is None:
        if test is not None:
            raise GankitError("--test goes with --data (a labelled folder); without --data the test set is MNIST's 10,000")
        return load_data("mnist"), load_data("mnist:test"), True
    if test is None:
        raise GankitError(f"--data {data}: also give --test DIR, a labelled folder with the same class subfolders")
    train = load_data(data)
    if train.kind != "image" or train.y is None or not train.classes:
        raise GankitError(f"--data {data}: expected labelled images (class subfolders, or an .npz with y)")
    tst = load_data(test)
    if tst.kind != "image" or tst.y is None or not tst.classes:
        raise GankitError(f"--test {test}: expected labelled images (class subfolders, or an .npz with y)")
    if list(tst.classes) != list(train.classes):
        only_tr = sorted(set(train.classes) - set(tst.classes))
        only_te = sorted(set(tst.classes) - set(train.classes))
        raise GankitError(f"--test {test}: its classes differ from --data {data}'s "
                          f"(only in training: {', '.join(only_tr[:10]) or 'none'}; "
                          f"only in test: {', '.join(only_te[:10]) or 'none'}); use a test folder with the same class subfolders")
    C, H, W = train.shape
    side = min(H, W)
    res = side if H == W and side in CONV_RESOLUTIONS else min(CONV_RESOLUTIONS, key=lambda r: (abs(r - side), -r))
    train.conform(res, None)
    tst.conform(res, C)
    return train, tst, False


def _check_n(n, y: np.ndarray, k: int, name: str) -> int:
    if n == "all":
        return len(y)
    if n % k:
        raise GankitError(f"--n {n}: not a multiple of the {k} classes; n/{k} images of each class are used "
                          f"(try {max(k, n // k * k)})")
    counts = np.bincount(y, minlength=k)
    if n > len(y) or n // k > counts.min():
        raise GankitError(f"--n {n}: larger than the data: {name} has {len(y)} images, at most "
                          f"{int(counts.min())} in its smallest class, so n can be at most {k * int(counts.min())}")
    if n // k < 2:
        raise GankitError(f"--n {n}: need at least 2 images per class (one for the validation split), so n >= {2 * k}")
    return n


def _split(y: np.ndarray, frac: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) positions into y: round(frac x count) of each class, at least
    one, at least one left for training."""
    g = np.random.default_rng(seed)
    tr, va = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[g.permutation(len(idx))]
        nv = min(max(1, int(round(frac * len(idx)))), len(idx) - 1)
        va.append(idx[:nv])
        tr.append(idx[nv:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


# ---- the experiment -----------------------------------------------------------------------

def _per_class(ratio: float, m: int, k: int) -> int:
    return max(1, int(round(ratio * m / k)))


def _synth_subset(xs: torch.Tensor, per_max: int, per: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `per` of each class of a class-ordered pool of `per_max` per class."""
    import torch

    idx = (torch.arange(k)[:, None] * per_max + torch.arange(per)[None, :]).flatten()
    return xs[idx], torch.arange(k).repeat_interleave(per)


def _stats(accs: list[float]) -> dict:
    a = np.asarray(accs, dtype=np.float64)
    return {"mean": round(float(a.mean()), 6), "std": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 6),
            "accs": [round(float(v), 6) for v in a]}


def _train_gan(source: str, n: int, shape, budget: Budget, out: Path, device: str, overrides: list[str], log):
    from gankit import api
    from gankit.config import load_config

    steps = budget.gan_steps
    sets = {"data.source": source, "data.resolution": int(shape[1]), "data.channels": int(shape[0]),
            "train.steps": steps, "train.batch": min(GAN_BATCH, n), "seed": GAN_SEED, "device": device,
            "log.progress": False, "log.every": max(1, min(50, steps)), "log.grid_every": steps,
            "log.ckpt_every": steps, **GAN_SETS}
    cfg = load_config(GAN_PRESET, overrides=sets)
    if overrides:
        from gankit.config import apply_overrides

        cfg = apply_overrides(cfg, overrides)
        if cfg.data.source != source:
            raise GankitError("--gan-set data.source: the GAN trains on the n images only; data.source is set by augment-eval")
    t0 = time.perf_counter()
    run = api.train(cfg, out)
    return run, cfg, time.perf_counter() - t0


def augment_eval(out: str | Path, ns=DEFAULT_NS, data: str | None = None, test: str | None = None,
                 ratios=DEFAULT_RATIOS, quick: bool = False, seeds: int | None = None, gan_steps: int | None = None,
                 clf_steps: int | None = None, val_fraction: float = 0.2, device: str = "cpu",
                 gan_overrides: list[str] | None = None, command: str | None = None,
                 log: Callable[[str], None] | None = None) -> dict:
    """Run the experiment (module docstring) into `out`: augment_eval.json, augment_eval.md (the
    table), augment_eval.png (accuracy vs n per arm), and a GAN run per n (gan-n{n}/). Returns
    the JSON record, with its one-line `summary`."""
    import torch

    from gankit.data import low_data_indices
    from gankit.util import resolve_device

    log = log or (lambda s: print(f"augment-eval: {s}", file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    ns, ratios = parse_ns(ns), parse_ratios(ratios)
    if not 0 < val_fraction < 1:
        raise GankitError(f"--val-fraction {val_fraction:g}: expected a fraction with 0 < f < 1")
    budget = QUICK if quick else FULL
    if seeds is not None:
        if seeds < 1:
            raise GankitError(f"--seeds {seeds}: expected a number of classifier seeds >= 1")
        budget = replace(budget, seeds=seeds)
    if gan_steps is not None:
        if gan_steps < 1:
            raise GankitError(f"--gan-steps {gan_steps}: expected a number of GAN steps >= 1")
        budget = replace(budget, gan_steps=gan_steps)
    if clf_steps is not None:
        if clf_steps < 1:
            raise GankitError(f"--clf-steps {clf_steps}: expected a number of classifier steps >= 1")
        budget = replace(budget, recipe=replace(budget.recipe, steps=clf_steps))
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"--out {out}: already exists and is not empty; choose a new folder")

    train_ds, test_ds, is_mnist = _load_sources(data, test)
    y_all = train_ds.y.numpy()
    k = len(train_ds.classes)
    ns_checked = [_check_n(n, y_all, k, data or "MNIST's training set") for n in ns]
    dev = resolve_device(device)
    test_x, test_y = test_ds.x, test_ds.y
    if budget.test_n is not None and budget.test_n < len(test_x):
        test_x, test_y = test_x[:budget.test_n], test_y[:budget.test_n]
    test_x, test_y = test_x.to(dev), test_y.to(dev)
    out.mkdir(parents=True, exist_ok=True)
    recipe, params = budget.recipe, Classical()

    results = {}
    for n_req, n in zip(ns, ns_checked):
        t_n = time.perf_counter()
        if n_req == "all":
            keep = np.arange(len(y_all))
            source = "mnist" if is_mnist else None
        else:
            keep = low_data_indices(y_all, n)
            source = f"mnist@{n}" if is_mnist else None
        xr, yr = train_ds.x[keep], train_ds.y[keep]
        if source is None:  # a user's folder: the GAN reads exactly these n images
            from gankit.util import save_npz_atomic

            (out / "data").mkdir(exist_ok=True)
            path = out / "data" / f"n{n}.npz"
            save_npz_atomic(path, {"x": xr.numpy(), "y": yr.numpy().astype(np.int64)})
            source = str(path)
        label = f"n={n}"
        log(f"{label}: training the GAN ({GAN_PRESET}, {budget.gan_steps} steps, batch {min(GAN_BATCH, n)}) "
            f"on {source} ({len(xr)} images)")
        run, cfg, gan_s = _train_gan(source, n, train_ds.shape, budget, out / f"gan-n{n}", device,
                                     gan_overrides or [], log)
        from gankit.data import load_data

        gan_data = load_data(cfg.data.source)  # what the GAN read: the n images, nothing else
        log(f"{label}: GAN done in {gan_s:.0f} s ({len(gan_data)} training images)")

        # the synthetic pool, class by class: enough for the largest ratio on all n
        per_max = max(_per_class(max(ratios), n, k), _per_class(1.0, n, k))
        xs = run.sample_by_class(per_max, seed=SYNTH_SEED).to(dev)
        xr, yr = xr.to(dev), yr.to(dev)

        def fit(x_real, y_real, ratio, classical, seed, synth_only=False):
            m = len(x_real)
            parts_x, parts_y, aug = [], [], []
            if not synth_only:
                parts_x.append(x_real)
                parts_y.append(y_real)
                aug.append(torch.full((m,), classical, dtype=torch.bool, device=dev))
            if ratio:
                sx, sy = _synth_subset(xs, per_max, _per_class(ratio, m, k), k)
                parts_x.append(sx)
                parts_y.append(sy.to(dev))
                aug.append(torch.zeros(len(sx), dtype=torch.bool, device=dev))
            a = torch.cat(aug)
            return train_classifier(torch.cat(parts_x), torch.cat(parts_y), k, recipe, seed,
                                    a if bool(a.any()) else None, params)

        seeds_ = list(range(budget.seeds))
        # 1. ratio choice on the validation split (no test image involved)
        tr, va = _split(yr.cpu().numpy(), val_fraction)
        tr_t, va_t = torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)
        val = {}
        for arm in RATIO_ARMS:
            val[arm] = {}
            t0 = time.perf_counter()
            for r in ratios:
                accs = [accuracy(fit(xr[tr_t], yr[tr_t], r, arm == "classical+synth", s), xr[va_t], yr[va_t])
                        for s in seeds_]
                val[arm][r] = _stats(accs)
            chosen = max(ratios, key=lambda r: (val[arm][r]["mean"], -r))
            log(f"{label}: validation ({len(tr)} train / {len(va)} val images) {ARMS[arm]}: "
                + ", ".join(f"x{r:g} {val[arm][r]['mean']:.4f}" for r in ratios)
                + f" -> x{chosen:g} ({time.perf_counter() - t0:.0f} s)")

        # 2. every arm on all n, scored on the test set
        arms = {}
        for arm in ARMS:
            t0 = time.perf_counter()
            if arm in RATIO_ARMS:
                by_ratio = {}
                for r in ratios:
                    accs = [accuracy(fit(xr, yr, r, arm == "classical+synth", s), test_x, test_y) for s in seeds_]
                    by_ratio[f"{r:g}"] = {**_stats(accs), "ratio": r, "n_synthetic": k * _per_class(r, n, k),
                                          "val": val[arm][r]}
                chosen = max(ratios, key=lambda r: (val[arm][r]["mean"], -r))
                arms[arm] = {"label": ARMS[arm], **{x: by_ratio[f"{chosen:g}"][x] for x in ("mean", "std", "accs")},
                             "chosen_ratio": chosen, "chosen_by": "best mean validation accuracy", "ratios": by_ratio}
                desc = f"x{chosen:g} (val-chosen)"
            else:
                accs = [accuracy(fit(xr, yr, 1.0 if arm == "synth-only" else 0.0, arm == "classical", s,
                                     synth_only=arm == "synth-only"), test_x, test_y) for s in seeds_]
                arms[arm] = {"label": ARMS[arm], **_stats(accs)}
                if arm == "synth-only":
                    arms[arm]["n_synthetic"] = k * _per_class(1.0, n, k)
                desc = ""
            a = arms[arm]
            log(f"{label}: arm {ARMS[arm]}{' ' + desc if desc else ''}: test {a['mean']:.4f} +- {a['std']:.4f} "
                f"({len(seeds_)} seeds, {time.perf_counter() - t0:.0f} s)")
        bar = arms["classical"]["mean"]
        vs = {arm: {"beats_classical": arms[arm]["mean"] > bar, "diff": round(arms[arm]["mean"] - bar, 6)}
              for arm in ("synth", "classical+synth", "synth-only")}
        results[str(n_req if n_req == "all" else n)] = {
            "n": n, "per_class": n // k if n_req != "all" else None,
            "gan": {"run": str(run.dir), "data_source": cfg.data.source, "n_images": len(gan_data),
                    "steps": cfg.train.steps, "batch": cfg.train.batch, "seed": cfg.seed, "preset": GAN_PRESET,
                    "wall_s": round(gan_s, 1)},
            "split": {"train": len(tr), "val": len(va), "val_fraction": val_fraction, "seed": SPLIT_SEED},
            "arms": arms, "vs_classical": vs, "wall_s": round(time.perf_counter() - t_n, 1),
        }

    record = {
        "protocol": {
            "train_data": data or "mnist (60,000 training digits)", "test_data": test or "mnist:test",
            "test_images": len(test_x), "classes": list(train_ds.classes), "ns": [r["n"] for r in results.values()],
            "ratios": ratios, "quick": quick, "device": str(dev),
            "budget": {"gan_steps": budget.gan_steps, "gan_batch": f"min({GAN_BATCH}, n)",
                       "classifier_steps": recipe.steps, "classifier_batch": recipe.batch,
                       "classifier_seeds": budget.seeds, "test_images": len(test_x),
                       "classifier_trainings_per_n": budget.seeds * (3 + 4 * len(ratios))},
            "gan": {"preset": GAN_PRESET, "steps": budget.gan_steps, "batch": f"min({GAN_BATCH}, n)", "seed": GAN_SEED,
                    "trained_on": "the n images only (mnist@n, or OUT/data/n{n}.npz for a folder)",
                    "preset_changes": GAN_SETS, "overrides": list(gan_overrides or []), "synthetic_seed": SYNTH_SEED,
                    "synthetic_labels": "the class the conditional generator was asked for (EMA generator)"},
            "classifier": {"net": "gankit.apps.augment_eval.small_cnn (2 conv stages, width w)", **asdict(recipe),
                           "optimizer": "Adam, one-cycle LR", "sampling": "batches uniform with replacement over the "
                           "arm's pool (real + synthetic)", "seeds": list(range(budget.seeds))},
            "classical_augmentation": {**asdict(params), "ops": "random shift + rotation + elastic distortion "
                                       "(Simard et al. 2003), one bilinear resampling, on every real image each time "
                                       "it is drawn (arms 2 and 4; synthetic images are not augmented)"},
            "synthetic_counts": "ratio r: round(r x n / K) per class; arm 5: n synthetic (n/K per class), no real",
            "ratio_choice": f"stratified {1 - val_fraction:.0%}/{val_fraction:.0%} split of the n images (seed "
                            f"{SPLIT_SEED}); arms 3/4 trained on the train part + r x its size synthetic for every r "
                            "and seed; the r with the best mean validation accuracy is reported (ties: smaller r); "
                            "then every arm is retrained on all n and scored on the test set",
            "caveat": "the GAN is trained on all n images, including the validation part",
            "std": "sample std (ddof 1) over classifier seeds",
        },
        "results": results,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "command": command,
    }
    record["summary"] = summarize(record)
    (out / "augment_eval.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "augment_eval.md").write_text(table(record))
    plot(record, out / "augment_eval.png")
    record["files"] = {"json": str(out / "augment_eval.json"), "table": str(out / "augment_eval.md"),
                       "plot": str(out / "augment_eval.png")}
    return record


# ---- report -------------------------------------------------------------------------------

def summarize(record: dict) -> str:
    parts = []
    for key, r in record["results"].items():
        bar = r["arms"]["classical"]["mean"]
        wins = [f"{a} {r['arms'][a]['mean']:.4f}" for a, v in r["vs_classical"].items() if v["beats_classical"]]
        best = max(r["vs_classical"], key=lambda a: r["arms"][a]["mean"])
        parts.append(f"n={r['n']}: classical {bar:.4f}; " + (f"beaten by {', '.join(wins)}" if wins else
                                                            f"not beaten (best synthetic: {best} {r['arms'][best]['mean']:.4f})"))
    return "synthetic vs classical augmentation: " + "; ".join(parts)


def table(record: dict) -> str:
    p = record["protocol"]
    lines = [f"# augment-eval: test accuracy (mean +- std over {len(p['classifier']['seeds'])} classifier seeds, "
             f"{p['test_images']} test images)", "",
             "| n | arm | synthetic ratio | test accuracy | validation accuracy | vs arm 2 (classical) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in record["results"].values():
        bar = r["arms"]["classical"]["mean"]
        for arm, a in r["arms"].items():
            if arm in RATIO_ARMS:
                for key, v in a["ratios"].items():
                    mark = " (val-chosen)" if v["ratio"] == a["chosen_ratio"] else ""
                    lines.append(f"| {r['n']} | {a['label']} | x{key}{mark} | {v['mean']:.4f} +- {v['std']:.4f} | "
                                 f"{v['val']['mean']:.4f} | {v['mean'] - bar:+.4f} |")
            else:
                ratio = "x1 (no real)" if arm == "synth-only" else "-"
                diff = "bar" if arm == "classical" else f"{a['mean'] - bar:+.4f}"
                lines.append(f"| {r['n']} | {a['label']} | {ratio} | {a['mean']:.4f} +- {a['std']:.4f} | - | {diff} |")
    lines += ["", record["summary"], ""]
    return "\n".join(lines)


def plot(record: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    res = sorted(record["results"].values(), key=lambda r: r["n"])
    ns = [r["n"] for r in res]
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for arm, label in ARMS.items():
        m = [r["arms"][arm]["mean"] for r in res]
        s = [r["arms"][arm]["std"] for r in res]
        if arm in RATIO_ARMS:
            label += " (val-chosen ratio)"
        ax.errorbar(ns, m, yerr=s, marker="o", capsize=3, label=label,
                    linestyle="--" if arm == "classical" else "-")
    if len(ns) > 1:
        ax.set_xscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_xlabel("n (labelled real training images)")
    ax.set_ylabel("test accuracy")
    ax.set_title("classifier accuracy vs n per arm (mean +- std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
