"""Disease-specific synthesis on the lesion phantoms: a class-conditional GAN, its memorisation
check per class, beside the two baselines that calibrate the check.

    gankit train --preset phantom-lesion --out runs/lesion --max-seconds 3600
    gankit train --preset phantom-lesion --data phantoms-lesion@16 --set train.batch=16 --out runs/lesion16 --steps 6000
    gankit features train --data phantoms-lesion --test phantoms-lesion:test --out lesion-net.safetensors \
        --epochs 20 --batch 32 --shift 4
    .venv/bin/python benchmarks/lesion_synthesis.py --runs runs/lesion runs/lesion16 \
        --featurenet lesion-net.safetensors --json BENCH.json

Rows, each checked against its own training set with phantoms-lesion:test (100 images per class)
held out: the held-out images themselves (a generator that generalises perfectly: no copying
expected), the training images plus Gaussian noise of std 4 grey levels (a generator that copies:
copying expected), the training images flipped left-right and shifted 2-4 px (classical
augmentation: copies the check does not promise to catch), and each run's EMA generator (`--n` samples per class, seed 0, the same
samples `gankit eval` scores). Per class: the memorisation verdict and its numbers (pixel
distance, and the lesion classifier's features); the classifier's accuracy on the samples (the
share of class-c samples it calls c: does the conditional generator draw lesions when asked);
FID in that classifier's features against the held-out images of the class (n per class vs 100:
biased upwards, compare rows only with each other).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from _machine import machine, training_seconds  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit import api
from gankit.data import load_data
from gankit.metrics import memorization_classes as mc
from gankit.metrics.evaluate import Evaluator, fid

HELD = "phantoms-lesion:test"


def score(name: str, images: torch.Tensor, labels: torch.Tensor, train_source: str, ev: Evaluator,
          held_feats, held_y, featurenet: str, out: Path) -> dict:
    train = load_data(train_source, resolution=64, channels=1)
    ref = mc.reference(train, HELD)
    embed = (lambda x: ev.features(x).feats)
    check = mc.check(images, labels, ref, out / name, embed=embed, embed_name=Path(featurenet).stem)
    feats = ev.features(images)
    pred = feats.logits.argmax(1)
    row = {"name": name, "train": train_source, "train_n": len(train), "copying": check["copying"], "classes": {}}
    for k, cls in enumerate(train.classes):
        sel, hsel = labels == k, held_y == k
        c = check["classes"][cls]
        row["classes"][cls] = {
            "n": int(sel.sum()), "accuracy": float((pred[sel] == k).float().mean()),
            "fid": fid(held_feats[hsel], feats.feats[sel]),
            "pixel_share": c["pixel"]["share_below"], "pixel_limit": c["pixel"]["chance_limit"],
            "pixel_nn_share": c["pixel"]["nn_ratio"]["share_below"], "pixel_median_ratio": c["pixel"]["median_ratio"],
            "features_share": c["features"]["share_below"], "features_limit": c["features"]["chance_limit"],
            "copying": c["copying"], "verdict": [v for v in check["verdict"] if v.startswith(f"{cls}:")]}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="run directories of the phantom-lesion preset")
    p.add_argument("--featurenet", required=True, help="the lesion classifier (gankit features train, above)")
    p.add_argument("--n", type=int, default=1000, help="samples per class")
    p.add_argument("--out", default="lesion-bench", help="folder for the pictures")
    p.add_argument("--json", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    ev = Evaluator(a.featurenet)
    held = load_data(HELD, resolution=64, channels=1)
    hf = ev.features(held.x).feats
    g = np.random.default_rng(0)
    labels = torch.arange(2).repeat_interleave(a.n)
    rows = []
    # baseline 1: new real images (the held-out set, drawn with replacement): what generalising looks like
    idx = torch.cat([torch.from_numpy(g.choice(np.flatnonzero(held.y.numpy() == k), a.n)) for k in range(2)])
    rows.append(score("held-out real images", held.x[idx], labels, "phantoms-lesion", ev, hf, held.y, a.featurenet, out))
    # baseline 2: training images plus noise (std 4 grey levels): what copying looks like
    train = load_data("phantoms-lesion", resolution=64, channels=1)
    idx = torch.cat([torch.from_numpy(g.choice(np.flatnonzero(train.y.numpy() == k), a.n)) for k in range(2)])
    noisy = (train.x[idx].float() + torch.from_numpy(g.normal(0, 4, (2 * a.n, 1, 64, 64))).float()).clamp(0, 255)
    rows.append(score("training images + noise", noisy.round().to(torch.uint8), labels, "phantoms-lesion", ev, hf,
                      held.y, a.featurenet, out))
    # baseline 3: classical augmentation of the training images (a left-right flip and a shift of
    # 2-4 px each way, wrapped): copies the check is documented not to catch
    aug = train.x[idx].flip(-1)
    shifts = g.integers(2, 5, (2 * a.n, 2)) * g.choice([-1, 1], (2 * a.n, 2))
    aug = torch.stack([im.roll((int(dy), int(dx)), dims=(-2, -1)) for im, (dy, dx) in zip(aug, shifts)])
    rows.append(score("training images flipped + shifted", aug, labels, "phantoms-lesion", ev, hf, held.y,
                      a.featurenet, out))
    for run_dir in a.runs:
        run = api.load(run_dir)
        x = run.sample_by_class(a.n, seed=0)  # (2n, 1, 64, 64), class 0 then class 1
        row = score(f"GAN {Path(run_dir).name}", x, labels, run.config.data.source, ev, hf, held.y, a.featurenet, out)
        row.update({"step": run.step, "training_seconds": training_seconds(Path(run_dir)), "batch": run.config.train.batch})
        rows.append(row)
    result = {"rows": rows, "n_per_class": a.n, "held_out": HELD, "featurenet": a.featurenet,
              "featurenet_test_accuracy": ev.meta.get("test_accuracy"), "machine": machine(),
              "command": " ".join(sys.argv)}
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        for cls, c in r["classes"].items():
            print(f"{r['name']:<28} {cls:<7} acc {c['accuracy']:.3f}  FID {c['fid']:8.2f}  pixel {c['pixel_share']:.1%} "
                  f"(limit {c['pixel_limit']:.1%}, nn {c['pixel_nn_share']:.1%})  features {c['features_share']:.1%} "
                  f"(limit {c['features_limit']:.1%})  {'COPYING' if c['copying'] else 'no copying seen'}")


if __name__ == "__main__":
    main()
