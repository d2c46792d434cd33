"""augment-eval's driver: check the inputs, then for each n train the GAN on the n images, choose
the ratio on a validation split, train and score every arm, and write the record and report.
The experiment itself is described in `gankit.apps.augment_eval`."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit import api
from gankit.apps.augment_eval.classifier import Classical, accuracy, train_classifier
from gankit.apps.augment_eval.protocol import (ARMS, DEFAULT_NS, DEFAULT_RATIOS, FULL, GAN_BATCH, GAN_PRESET,
                                               GAN_SEED, GAN_SETS, QUICK, RATIO_ARMS, SPLIT_SEED, SYNTH_SEED,
                                               Budget, Recipe)
from gankit.apps.augment_eval.report import plot, summarize, table
from gankit.config import apply_overrides, load_config
from gankit.data import load_data, low_data_indices
from gankit.errors import GankitError
from gankit.util import resolve_device, save_npz_atomic

# The sides this protocol's classifier and conditional GANs are sized for (MNIST-scale data):
# other images are resized to the nearest.
SIDES = (28, 32, 64)


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
    res = side if H == W and side in SIDES else min(SIDES, key=lambda r: (abs(r - side), -r))
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


def _per_class(ratio: float, m: int, k: int) -> int:
    return max(1, int(round(ratio * m / k)))


def _synth_subset(xs: torch.Tensor, per_max: int, per: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `per` of each class of a class-ordered pool of `per_max` per class."""
    idx = (torch.arange(k)[:, None] * per_max + torch.arange(per)[None, :]).flatten()
    return xs[idx], torch.arange(k).repeat_interleave(per)


def _stats(accs: list[float]) -> dict:
    a = np.asarray(accs, dtype=np.float64)
    return {"mean": round(float(a.mean()), 6), "std": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 6),
            "accs": [round(float(v), 6) for v in a]}


def _train_gan(source: str, n: int, shape, budget: Budget, out: Path, device: str, overrides: list[str], log):
    steps = budget.gan_steps
    sets = {"data.source": source, "data.resolution": int(shape[1]), "data.channels": int(shape[0]),
            "train.steps": steps, "train.batch": min(GAN_BATCH, n), "seed": GAN_SEED, "device": device,
            "log.progress": False, "log.every": max(1, min(50, steps)), "log.grid_every": steps,
            "log.ckpt_every": steps, **GAN_SETS}
    cfg = load_config(GAN_PRESET, overrides=sets)
    if overrides:
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
    """Run the experiment (`gankit.apps.augment_eval`) into `out`: augment_eval.json,
    augment_eval.md (the table), augment_eval.png (accuracy vs n per arm), and a GAN run per n
    (gan-n{n}/). Returns the JSON record, with its one-line `summary`."""
    log = log or (lambda s: print(f"augment-eval: {s}", file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    ns, ratios = parse_ns(ns), parse_ratios(ratios)
    if not 0 < val_fraction < 1:
        raise GankitError(f"--val-fraction {val_fraction:g}: expected a fraction with 0 < f < 1")
    budget = _budget(quick, seeds, gan_steps, clf_steps)
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

    results = {}
    for n_req, n in zip(ns, ns_checked):
        if n_req == "all":
            keep = np.arange(len(y_all))
            source = "mnist" if is_mnist else None
        else:
            keep = low_data_indices(y_all, n)
            source = f"mnist@{n}" if is_mnist else None
        xr, yr = train_ds.x[keep], train_ds.y[keep]
        if source is None:  # a user's folder: the GAN reads exactly these n images
            (out / "data").mkdir(exist_ok=True)
            path = out / "data" / f"n{n}.npz"
            save_npz_atomic(path, {"x": xr.numpy(), "y": yr.numpy().astype(np.int64)})
            source = str(path)
        results[str(n_req if n_req == "all" else n)] = _one_n(
            n, n_req, source, xr, yr, train_ds.shape, k, (test_x, test_y), ratios, val_fraction, budget, out, dev,
            device, gan_overrides or [], log)

    record = {
        "protocol": _protocol(data, test, len(test_x), list(train_ds.classes), [r["n"] for r in results.values()],
                              ratios, quick, dev, budget, gan_overrides, val_fraction),
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


def _budget(quick: bool, seeds: int | None, gan_steps: int | None, clf_steps: int | None) -> Budget:
    """QUICK or FULL, with the user's overrides checked and applied."""
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
    return budget


class _Arms:
    """Trains one arm's classifier: real images (optionally with classical augmentation) and/or the
    first round(ratio x m / K) per class of the synthetic pool `xs` (class-ordered, `per_max` per class)."""

    def __init__(self, xs: torch.Tensor, per_max: int, k: int, recipe: Recipe, params: Classical,
                 dev: torch.device):
        self.xs, self.per_max, self.k, self.recipe, self.params, self.dev = xs, per_max, k, recipe, params, dev

    def fit(self, x_real, y_real, ratio, classical, seed, synth_only=False):
        dev, k = self.dev, self.k
        m = len(x_real)
        parts_x, parts_y, aug = [], [], []
        if not synth_only:
            parts_x.append(x_real)
            parts_y.append(y_real)
            aug.append(torch.full((m,), classical, dtype=torch.bool, device=dev))
        if ratio:
            sx, sy = _synth_subset(self.xs, self.per_max, _per_class(ratio, m, k), k)
            parts_x.append(sx)
            parts_y.append(sy.to(dev))
            aug.append(torch.zeros(len(sx), dtype=torch.bool, device=dev))
        a = torch.cat(aug)
        return train_classifier(torch.cat(parts_x), torch.cat(parts_y), k, self.recipe, seed,
                                a if bool(a.any()) else None, self.params)


def _one_n(n: int, n_req, source: str, xr: torch.Tensor, yr: torch.Tensor, shape, k: int, test, ratios: list[float],
           val_fraction: float, budget: Budget, out: Path, dev: torch.device, device: str, gan_overrides: list[str],
           log) -> dict:
    """One n: the GAN on the n images (`source`), the ratio chosen on validation, every arm on the test set."""
    test_x, test_y = test
    t_n = time.perf_counter()
    label = f"n={n}"
    log(f"{label}: training the GAN ({GAN_PRESET}, {budget.gan_steps} steps, batch {min(GAN_BATCH, n)}) "
        f"on {source} ({len(xr)} images)")
    run, cfg, gan_s = _train_gan(source, n, shape, budget, out / f"gan-n{n}", device, gan_overrides, log)
    gan_data = load_data(cfg.data.source)  # what the GAN read: the n images, nothing else
    log(f"{label}: GAN done in {gan_s:.0f} s ({len(gan_data)} training images)")

    # the synthetic pool, class by class: enough for the largest ratio on all n
    per_max = max(_per_class(max(ratios), n, k), _per_class(1.0, n, k))
    xs = run.sample_by_class(per_max, seed=SYNTH_SEED).to(dev)
    xr, yr = xr.to(dev), yr.to(dev)
    fit = _Arms(xs, per_max, k, budget.recipe, Classical(), dev).fit
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
    return {
        "n": n, "per_class": n // k if n_req != "all" else None,
        "gan": {"run": str(run.dir), "data_source": cfg.data.source, "n_images": len(gan_data),
                "steps": cfg.train.steps, "batch": cfg.train.batch, "seed": cfg.seed, "preset": GAN_PRESET,
                "wall_s": round(gan_s, 1)},
        "split": {"train": len(tr), "val": len(va), "val_fraction": val_fraction, "seed": SPLIT_SEED},
        "arms": arms, "vs_classical": vs, "wall_s": round(time.perf_counter() - t_n, 1),
    }


def _protocol(data: str | None, test: str | None, test_images: int, classes: list, ns: list, ratios: list[float],
              quick: bool, dev: torch.device, budget: Budget, gan_overrides: list[str] | None,
              val_fraction: float) -> dict:
    """What was run, recorded in the JSON beside the results."""
    recipe, params = budget.recipe, Classical()
    return {
        "train_data": data or "mnist (60,000 training digits)", "test_data": test or "mnist:test",
        "test_images": test_images, "classes": classes, "ns": ns,
        "ratios": ratios, "quick": quick, "device": str(dev),
        "budget": {"gan_steps": budget.gan_steps, "gan_batch": f"min({GAN_BATCH}, n)",
                   "classifier_steps": recipe.steps, "classifier_batch": recipe.batch,
                   "classifier_seeds": budget.seeds, "test_images": test_images,
                   "classifier_trainings_per_n": budget.seeds * (3 + 4 * len(ratios))},
        "gan": {"preset": GAN_PRESET, "steps": budget.gan_steps, "batch": f"min({GAN_BATCH}, n)", "seed": GAN_SEED,
                "trained_on": "the n images only (mnist@n, or OUT/data/n{n}.npz for a folder)",
                "preset_changes": GAN_SETS, "overrides": list(gan_overrides or []), "synthetic_seed": SYNTH_SEED,
                "synthetic_labels": "the class the conditional generator was asked for (EMA generator)"},
        "classifier": {"net": "gankit.apps.augment_eval.classifier.small_cnn (2 conv stages, width w)",
                       **asdict(recipe), "optimizer": "Adam, one-cycle LR",
                       "sampling": "batches uniform with replacement over the arm's pool (real + synthetic)",
                       "seeds": list(range(budget.seeds))},
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
    }
