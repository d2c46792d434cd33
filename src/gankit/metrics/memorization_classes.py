"""The memorisation check on small labelled sets: when every evaluation runs it, and per class.

Synthetic images of a small labelled set (scans of one disease, say) that copy training images
leak those images. So the check of `gankit.metrics.memorization` is part of every evaluation
(in training, `eval.every`, and `gankit eval RUN`) of a run that `decide` says is at risk:

- ``eval.memorization: auto`` (the default): a conditional generator on a labelled training set of
  at most `SMALL_SET` images; ``true``: every generator run; ``false``: never.
- per class for a conditional generator: its samples of class c against the training images of
  class c, with held-out real images of class c as the reference (a copy of a training image of
  class c drawn as class c is the leak; the check also stays within one class's look, so a class
  that is simply easier is not mistaken for copying). Copying suspected in any class is the run's
  verdict. An unconditional generator is checked on all its samples at once.

The held-out images are `eval.held_out`, else the training source's held-out split
(`memorization.held_out_source`); their classes are matched to the training set's by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.memorization import held_out_source, memorization, save_pictures

SMALL_SET = 10_000  # training images: at most this many, and the auto check runs
RULE = f"auto: a conditional generator on a labelled set of at most {SMALL_SET:,} images"


def decide(setting, conditional: bool, labelled: bool, n_train: int) -> tuple[bool, str]:
    """(whether the check runs, why, in words) for `eval.memorization` = `setting` ("auto", True,
    False) on a run whose G is `conditional` and whose training set is `labelled` with `n_train` images."""
    if setting is False:
        return False, "off (eval.memorization false)"
    if setting is True:
        return True, "on (eval.memorization true)"
    if not conditional or not labelled:
        return False, f"not run ({RULE}; this generator is {'unlabelled' if conditional else 'unconditional'})"
    if n_train > SMALL_SET:
        return False, f"not run ({RULE}; this one has {n_train:,})"
    return True, f"auto: {n_train:,} labelled training images <= {SMALL_SET:,}, a conditional generator"


@dataclass
class Reference:
    """What samples are compared with: the training images and held-out real images (uint8, at
    the samples' shape), their labels as training class indices (None: unlabelled)."""

    train: Tensor
    train_y: Tensor | None
    held: Tensor
    held_y: Tensor | None
    classes: list[str] | None
    train_name: str
    held_name: str
    mirror: bool = False


def held_out_for(train_source: str, held_out: str | None) -> str | None:
    """`held_out`, or the held-out split of `train_source`; None where neither is known."""
    held = held_out or held_out_source(train_source)
    if held is not None and held == train_source:
        raise GankitError(f"eval.held_out {held}: the held-out images must not be the training images")
    return held


def reference(train, held_source: str, mirror: bool = False) -> Reference:
    """The `Reference` for the training `Dataset` `train` (its images, its labels) and the data
    source `held_source`, loaded at the training images' shape; held-out images of a class the
    training set lacks are dropped, and a labelled training set needs labelled held-out images."""
    from gankit.data import load_data

    x = train.read(torch.arange(len(train)))  # (M, C, H, W) uint8 on the CPU, as stored (mirrors not added)
    c, h, w = x.shape[1:]
    if h != w:
        raise GankitError(f"memorization: the training images are {h}x{w}; the check compares square images")
    held = load_data(held_source, resolution=h, channels=c)
    if held.kind != "image":
        raise GankitError(f"memorization: held-out source {held_source!r} holds 2-D points; it needs images")
    y = getattr(train, "y", None)
    classes = train.classes if y is not None and train.classes else None
    hx, hy = held.x.cpu(), None
    if classes is not None:
        if held.y is None or not held.classes:
            raise GankitError(f"memorization: held-out source {held_source!r} has no class labels; the per-class "
                              f"check needs held-out images of each class ({', '.join(classes)}): set eval.held_out "
                              "to a labelled source (a folder of class folders)")
        index = {name: i for i, name in enumerate(classes)}
        mapped = torch.tensor([index.get(name, -1) for name in held.classes])[held.y.cpu().long()]
        keep = mapped >= 0
        hx, hy = hx[keep], mapped[keep]
    return Reference(x, None if classes is None else y.cpu().long(), hx, hy, classes, train.name,
                     held_source, mirror)


def check(samples: Tensor, labels: Tensor | None, ref: Reference, out_dir: str | Path | None, quantile: float = 0.05,
          embed: Callable[[Tensor], Tensor] | None = None, embed_name: str | None = None) -> dict:
    """The check on uint8 `samples` (N, C, H, W) drawn with class `labels` (N,) (None: unconditional,
    checked whole): per class, `memorization.memorization` and, under OUT_DIR/CLASS/, its pictures
    (and the result as OUT_DIR/memorization.json).
    JSON-ready: {"copying", "verdict" (lines, each naming its class), "classes": {name: summary},
    "skipped": {name: why}, "protocol"}."""
    groups = []
    if labels is not None and ref.classes is not None:
        for k, name in enumerate(ref.classes):
            groups.append((name, samples[labels == k], ref.train[ref.train_y == k], ref.held[ref.held_y == k]))
    else:
        groups.append(("all", samples, ref.train, ref.held))
    out = {"copying": False, "verdict": [], "classes": {}, "skipped": {}}
    for name, s, t, h in groups:
        if min(len(s), len(h)) < 2 or len(t) < 2:
            out["skipped"][name] = f"{len(s)} samples, {len(t)} training and {len(h)} held-out images (need >= 2 each)"
            out["verdict"].append(f"{name}: not checked: {out['skipped'][name]}")
            continue
        result = memorization(s, t, h, quantile, ref.mirror, embed, embed_name)
        summary = {k: v for k, v in result.summary().items() if k != "verdict"}
        if out_dir is not None:
            summary["files"] = save_pictures(result, s, Path(out_dir) / name)
        out["classes"][name] = summary
        out["copying"] = out["copying"] or result.copying
        out["verdict"] += [f"{name}: {line}" for line in result.verdicts]
    out["protocol"] = {"train": ref.train_name, "held_out": ref.held_name, "per_class": ref.classes is not None
                       and labels is not None, "quantile": quantile, "mirror": ref.mirror,
                       "n": {name: len(s) for name, s, _, _ in groups},
                       "train_n": {name: len(t) for name, _, t, _ in groups},
                       "held_out_n": {name: len(h) for name, _, _, h in groups},
                       "distances": ["pixel"] + (["features"] if embed is not None else [])}
    if out_dir is not None:  # beside the pictures, the numbers they illustrate (the latest check's)
        from gankit import disk

        with disk.atomic(Path(out_dir) / "memorization.json") as tmp:
            tmp.write_text(json.dumps(out, indent=2) + "\n")
    return out


def row_items(result: dict) -> dict:
    """A result's numbers for one metrics.jsonl evaluation row: per class CLASS/mem_share (the
    samples' share closer to a training image than the held-out images' 5% quantile, pixel
    distance), CLASS/mem_limit (the most that share reaches by chance), CLASS/mem_copying (0 or 1);
    mem_copying for the run; "memorization", the verdict lines joined."""
    row = {}
    for name, s in result["classes"].items():
        px = s["pixel"]
        row[f"{name}/mem_share"] = round(px["share_below"], 6)
        row[f"{name}/mem_limit"] = round(px["chance_limit"], 6)
        row[f"{name}/mem_copying"] = int(s["copying"])
    row["mem_copying"] = int(result["copying"])
    row["memorization"] = " | ".join(result["verdict"])
    return row


def headline(result: dict) -> str:
    """One line for train.log and the console: the verdict per class, briefly."""
    parts = []
    for name, s in result["classes"].items():
        px = s["pixel"]
        word = "COPYING SUSPECTED" if s["copying"] else "closer, not copies" if px["closer"] else "no copying seen"
        parts.append(f"{name}: {word} ({px['share_below']:.1%} closer than held-out, chance <= {px['chance_limit']:.1%})")
    parts += [f"{name}: not checked ({why})" for name, why in result["skipped"].items()]
    return "; ".join(parts)
