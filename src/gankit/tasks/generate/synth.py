"""`gankit synth`: a labelled synthetic dataset from a trained generation run.

Writes N images per class, either as class subfolders of PNGs (the layout `gankit train --data DIR`,
torchvision's ImageFolder and most loaders read; subfolder names are the class names) or as one
`.npz` with `x` (uint8 N x C x H x W) and `y` (int64), rows in class order. A `synth.json` record
(NAME.json beside an .npz) says how every label was obtained.

Where the labels come from:

- conditional runs (cgan, acgan): the class the generator was asked for;
- InfoGAN runs (`model.info_cat > 0`): the categorical code, mapped to classes by the feature
  network (or `classifier`): `MAP_SAMPLES` images per code value are classified, and each code is
  mapped to its majority class; class k's samples are drawn with the codes mapped to k (uniformly).
  Two codes on one class is a warning; a class that no code maps to is refused, naming it;
- unconditional runs with `filter`: the classifier's argmax (at confidence >= the threshold).

`truncate=psi` is the truncation trick, the one `gankit sample --truncate` uses
(`gankit.models.latent`): in w for a stylegan2 run, w <- w_avg + psi (w - w_avg); in z for every
other generator, z <- psi * z (the noise part only; InfoGAN's codes are kept). `filter=T` keeps a
sample only if the classifier's argmax is its intended class with softmax probability >= T,
drawing more until every class has N, at most `MAX_ATTEMPTS` x N candidates per class.

Latents are drawn on the CPU from streams seeded by (seed, class, block of `BLOCK` samples), so the
same seed gives the same dataset whatever `batch` (the number of images generated at once) is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gankit import disk
from gankit.errors import GankitError, warn
from gankit.media.apply import AtomicDir
from gankit.media.images import write_image
from gankit.models.latent import check_truncation, draw_latent, truncation_method

MAP_SAMPLES = 200  # InfoGAN: images per code value classified to map the code to a class
MAX_ATTEMPTS = 50  # with a filter: candidates drawn per class at most, as a multiple of per_class
BLOCK = 64  # latents are drawn in blocks of this many, each block from its own seed
_ALL, _CLASS, _MAP = 0, 1, 2  # stream keys: (kind, class or code), with the seed and block number
_WHY_CLASSES = ("per-class data needs a conditional run (cgan, acgan), an InfoGAN run "
                "(model.info_cat > 0), or --filter with a classifier (then samples are labelled by the classifier)")


def check_options(per_class: int, truncate: float | None, threshold: float | None, out, npz) -> None:
    """The checks that need no run: one line each."""
    if per_class < 1:
        raise GankitError(f"--per-class {per_class}: expected a number of images per class >= 1")
    check_truncation(truncate)
    if threshold is not None and not 0 < threshold < 1:
        raise GankitError(f"--filter {threshold:g}: expected a confidence threshold with 0 < T < 1")
    if (out is None) == (npz is None):
        raise GankitError("gankit synth writes either a folder (--out DIR) or an array file (--npz FILE.npz); give one")
    if npz is not None and Path(npz).suffix.lower() != ".npz":
        raise GankitError(f"--npz {npz}: expected a path ending in .npz")


def check_output(out, npz, overwrite: bool) -> None:
    """Refuse an existing output (before any work) unless `overwrite`."""
    if overwrite:
        return
    if out is not None:
        p = Path(out)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise GankitError(f"--out {p}: already exists; choose a new folder, remove it, or pass --overwrite")
    else:
        for p in (Path(npz), sidecar_path(npz)):
            if p.exists():
                raise GankitError(f"--npz {npz}: {p} already exists; choose another path or pass --overwrite")


def sidecar_path(npz) -> Path:
    p = Path(npz)
    return p.with_suffix(".json")


class _Classifier:
    """A feature network as a classifier: probabilities for uint8 images, and its class names."""

    def __init__(self, path, device, run_classes: list[str]):
        from gankit.metrics.evaluate import Evaluator

        self.ev = Evaluator(path, device)
        self.k = int(self.ev.net.spec["n_classes"])
        named = self.ev.meta.get("classes")
        if isinstance(named, list) and len(named) == self.k:
            self.classes = [str(c) for c in named]
        elif len(run_classes) == self.k:  # a net trained on the run's own labelled data (or MNIST on MNIST)
            self.classes = list(run_classes)
        else:
            self.classes = [str(i) for i in range(self.k)]

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.ev.features(images, "generated samples").logits.softmax(1)

    def record(self) -> dict:
        return {"name": self.ev.net_name, "sha256": self.ev.meta["sha256"], "n_classes": self.k}


class _Streams:
    """Deterministic latent streams: `take(key, n, codes)` returns the next n generator inputs of
    stream `key`, drawn block by block on the CPU (codes: InfoGAN categorical codes to draw from).
    They are not truncated: `run.generate(..., truncate=psi)` does that, in w or z as the run needs."""

    def __init__(self, run, seed: int):
        self.run, self.seed = run, seed
        self.cfg = run.config.model
        self.buf: dict[tuple, list[torch.Tensor]] = {}
        self.blocks: dict[tuple, int] = {}

    def _block(self, key: tuple, codes: list[int] | None) -> torch.Tensor:
        b = self.blocks.get(key, 0)
        self.blocks[key] = b + 1
        state = np.random.SeedSequence([self.seed, *key, b]).generate_state(2)
        g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        z = torch.randn(BLOCK, self.cfg.z_dim, generator=g)
        c_cat = None
        if self.cfg.info_cat:
            pool = torch.tensor(codes if codes is not None else range(self.cfg.info_cat))
            c_cat = pool[torch.randint(len(pool), (BLOCK,), generator=g)]
        return draw_latent(self.cfg, BLOCK, g, "cpu", z=z, c_cat=c_cat).z_in

    def take(self, key: tuple, n: int, codes: list[int] | None = None) -> torch.Tensor:
        parts = self.buf.setdefault(key, [])
        have = sum(len(p) for p in parts)
        while have < n:
            parts.append(self._block(key, codes))
            have += len(parts[-1])
        z = torch.cat(parts)
        self.buf[key] = [z[n:]] if len(z) > n else []
        return z[:n]


def _code_map(run, streams: _Streams, clf: _Classifier, batch: int, psi: float | None) -> tuple[dict, list[str]]:
    """InfoGAN: each categorical code's majority class under `clf`. Returns (record, classes with no code)."""
    record = {}
    for code in range(run.config.model.info_cat):
        z = streams.take((_MAP, code), MAP_SAMPLES, [code])
        pred = clf.probs(run.generate(z, batch=batch, truncate=psi)).argmax(1)
        counts = torch.bincount(pred, minlength=clf.k)
        k = int(counts.argmax())
        record[str(code)] = {"class": clf.classes[k], "index": k, "share": round(float(counts[k]) / MAP_SAMPLES, 4)}
    mapped = {v["index"] for v in record.values()}
    missing = [clf.classes[k] for k in range(clf.k) if k not in mapped]
    return record, missing


def _describe_map(record: dict) -> str:
    return ", ".join(f"{c}->{v['class']!r}" for c, v in record.items())


def synthesize(run, per_class: int, out=None, npz=None, truncate: float | None = None,
               threshold: float | None = None, classifier=None, seed: int = 0, batch: int = 256,
               overwrite: bool = False, command: str | None = None) -> dict:
    """Write `per_class` generated images per class of a loaded generation `run` (see the module
    docstring). Returns a summary: {kind, out, json, n, classes, counts, labels}."""
    from gankit.version import __version__

    check_options(per_class, truncate, threshold, out, npz)
    if batch < 1:
        raise GankitError(f"--batch {batch}: expected a number of images per generator call >= 1")
    run.need("generate", "gankit synth")
    if run.data_meta["kind"] == "points":
        raise GankitError(f"{run.dir}: gankit synth writes images; this run generates 2-D points (use gankit sample --npz)")
    cfg = run.config.model
    infogan = bool(cfg.info_cat) and not run.conditional
    if not (run.conditional or infogan or threshold is not None):
        raise GankitError(f"{run.dir}: this run is unconditional (preset {run.config.preset or 'custom'}); {_WHY_CLASSES}")
    if classifier is not None and threshold is None and not infogan:
        raise GankitError("--classifier is used by --filter (and to map an InfoGAN run's codes to classes); add --filter T")
    check_output(out, npz, overwrite)
    names = [str(c) for c in (run.data_meta.get("classes") or [])]

    psi = None if truncate is None else float(truncate)
    streams = _Streams(run, seed)
    clf = _Classifier(classifier, run.device, names) if (threshold is not None or infogan) else None
    code_map, codes_of = None, {}
    if run.conditional:
        classes, labels = names, "conditional: the class the generator was asked for"
        if clf is not None and clf.k != len(classes):
            which = f"--classifier {classifier}" if classifier else f"the bundled feature network {clf.ev.net_name}"
            raise GankitError(f"{which}: it has {clf.k} classes, this run {len(classes)} ({', '.join(classes[:10])}); "
                              "give --classifier a feature network trained on the run's classes (gankit features train)")
    elif infogan:
        classes = clf.classes
        code_map, missing = _code_map(run, streams, clf, batch, psi)
        if missing:
            raise GankitError(f"{run.dir}: InfoGAN codes mapped to classes by {clf.ev.net_name} "
                              f"(majority of {MAP_SAMPLES} samples each): {_describe_map(code_map)}; "
                              f"class{'es' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
                              f"get{'' if len(missing) > 1 else 's'} no code, so per-class data "
                              "cannot be drawn; train the run longer, or use a conditional run (cgan, acgan)")
        for c, v in code_map.items():
            codes_of.setdefault(v["index"], []).append(int(c))
        shared = {k: cs for k, cs in codes_of.items() if len(cs) > 1}
        if shared:
            warn("InfoGAN code map: " + "; ".join(f"codes {', '.join(map(str, cs))} all map to class "
                                                  f"{classes[k]!r}" for k, cs in shared.items())
                 + f" ({_describe_map(code_map)}); those classes draw from all their codes")
        labels = (f"infogan: categorical code mapped to its majority class under {clf.ev.net_name} "
                  f"({MAP_SAMPLES} samples per code)")
    else:
        classes = clf.classes
        labels = f"classifier: argmax of {clf.ev.net_name} at confidence >= {threshold:g}"
    _check_names(classes)

    per_stream = run.conditional or infogan  # each class drawn on its own (else: labelled after drawing)
    if per_stream:
        kept, drawn, rates = _per_class(run, streams, clf, classes, per_class, threshold, batch, codes_of, infogan,
                                        psi)
    else:
        kept, drawn, rates = _labelled_by_classifier(run, streams, clf, classes, per_class, threshold, batch, psi)

    x = torch.cat(kept)
    y = torch.arange(len(classes)).repeat_interleave(per_class)
    record = {
        "run": str(run.dir), "checkpoint": None if run.checkpoint is None else str(run.checkpoint),
        "run_step": run.step, "preset": run.config.preset,
        "ema": run.ema, "seed": seed, "per_class": per_class, "n": len(x), "shape": list(x.shape[1:]),
        "classes": classes, "counts": {c: len(k) for c, k in zip(classes, kept)}, "labels": labels,
        "truncation": None if truncate is None else {"psi": psi, "method": truncation_method(run.G)},
        "filter": None if threshold is None else {
            "threshold": threshold, "rule": "kept if the classifier's argmax is the intended class "
                                            "with softmax probability >= threshold",
            "classifier": clf.record(), "max_candidates": MAX_ATTEMPTS * per_class * (1 if per_stream else len(classes)),
            "max_candidates_of": "each class" if per_stream else "all classes together"},
        # candidates generated per class (all classes' together when the classifier labels them)
        "drawn": {c: d for c, d in zip(classes, drawn)},
        "acceptance_rate": {c: round(r, 6) for c, r in zip(classes, rates)},
        "infogan_code_map": None if code_map is None else {
            "method": f"{MAP_SAMPLES} samples per code (at the same truncation) classified by the feature "
                      "network; each code -> its majority class", "classifier": clf.record(), "codes": code_map,
            "shared_classes": [classes[k] for k, cs in codes_of.items() if len(cs) > 1]},
        "format": "folder" if out is not None else "npz",
        "gankit_version": __version__, "command": command,
    }
    return _write(x, y, classes, record, out, npz, overwrite)


def _check_names(classes: list[str]) -> None:
    if not classes:
        raise GankitError(f"the run records no class names; {_WHY_CLASSES}")
    for c in classes:
        if c in ("", ".", "..") or c.startswith(".") or any(ch in c for ch in "/\\\0"):
            raise GankitError(f"class name {c!r} cannot be a folder name; write --npz instead")
    if len(set(classes)) != len(classes):
        raise GankitError(f"the class names repeat ({', '.join(classes[:20])}); write --npz instead")


def _per_class(run, streams, clf, classes, per_class, threshold, batch, codes_of, infogan, psi):
    """Conditional and InfoGAN runs: each class from its own stream, filtered when asked.
    Returns (images per class, candidates drawn per class, acceptance rate per class)."""
    kept, drawn, rates = [], [], []
    cap = MAX_ATTEMPTS * per_class
    for k, name in enumerate(classes):
        codes = codes_of.get(k) if infogan else None
        if threshold is None:
            z = streams.take((_CLASS, k), per_class, codes)
            y = torch.full((per_class,), k) if run.conditional else None
            kept.append(run.generate(z, y, batch=batch, truncate=psi))
            drawn.append(per_class)
            rates.append(1.0)
            continue
        got, n_drawn, n_pass = [], 0, 0
        while sum(len(g) for g in got) < per_class and n_drawn < cap:
            n = min(batch, cap - n_drawn)
            z = streams.take((_CLASS, k), n, codes)
            y = torch.full((n,), k) if run.conditional else None
            images = run.generate(z, y, batch=batch, truncate=psi)
            conf, pred = clf.probs(images).max(1)
            ok = (pred == k) & (conf >= threshold)
            n_drawn, n_pass = n_drawn + n, n_pass + int(ok.sum())
            got.append(images[ok])
        have = sum(len(g) for g in got)
        if have < per_class:
            raise GankitError(f"--filter {threshold:g}: class {name!r} got {have} of {per_class} images after "
                              f"{n_drawn} samples (acceptance rate {n_pass / n_drawn:.2%}); lower --filter, "
                              "ask for fewer per class, or train the run longer")
        kept.append(torch.cat(got)[:per_class])
        drawn.append(n_drawn)
        rates.append(n_pass / n_drawn)
    return kept, drawn, rates


def _labelled_by_classifier(run, streams, clf, classes, per_class, threshold, batch, psi):
    """Unconditional runs with a filter: samples labelled by the classifier's argmax (confidence >=
    threshold), each class filled to per_class; at most MAX_ATTEMPTS x the request drawn in all."""
    K = len(classes)
    got = [[] for _ in range(K)]
    n_pass = torch.zeros(K, dtype=torch.long)
    cap, n_drawn = MAX_ATTEMPTS * per_class * K, 0
    while min(len(g) for g in got) < per_class and n_drawn < cap:
        n = min(batch, cap - n_drawn)
        images = run.generate(streams.take((_ALL,), n), batch=batch, truncate=psi)
        conf, pred = clf.probs(images).max(1)
        ok = conf >= threshold
        n_drawn += n
        n_pass += torch.bincount(pred[ok], minlength=K)
        for i in torch.nonzero(ok).flatten().tolist():
            k = int(pred[i])
            if len(got[k]) < per_class:
                got[k].append(images[i])
    short = [k for k in range(K) if len(got[k]) < per_class]
    if short:
        k = min(short, key=lambda j: len(got[j]))
        rate = float(n_pass[k]) / n_drawn
        raise GankitError(f"--filter {threshold:g}: class {classes[k]!r} got {len(got[k])} of {per_class} images "
                          f"after {n_drawn} samples (acceptance rate {rate:.2%}; {len(short)} of {K} classes short); "
                          "lower --filter, ask for fewer per class, or train the run longer")
    return [torch.stack(g) for g in got], [n_drawn] * K, [float(n_pass[k]) / n_drawn for k in range(K)]


def _write(x, y, classes, record, out, npz, overwrite) -> dict:
    text = json.dumps(record, indent=2) + "\n"
    summary = {"n": len(x), "classes": classes, "counts": record["counts"], "labels": record["labels"]}
    if out is not None:
        out = Path(out)
        with AtomicDir(out, overwrite=overwrite) as tmp:
            for name in classes:
                (tmp / name).mkdir()
            per = record["per_class"]
            for i, img in enumerate(x):
                write_image(np.ascontiguousarray(img.permute(1, 2, 0).numpy()), tmp / classes[int(y[i])] / f"{i % per:06d}.png")
            (tmp / "synth.json").write_text(text)
        return {**summary, "kind": "folder", "out": str(out), "json": str(out / "synth.json")}
    npz, side = Path(npz), sidecar_path(npz)
    with disk.atomic(npz) as tmp_x:  # both files, or neither
        with open(tmp_x, "wb") as f:
            np.savez_compressed(f, x=x.numpy(), y=y.numpy().astype(np.int64))
        with disk.atomic(side) as tmp_j:
            tmp_j.write_text(text)
    return {**summary, "kind": "npz", "out": str(npz), "json": str(side)}
