"""A large synthetic photo folder, made into a dataset zip by `gankit dataset`, timed.

    .venv/bin/python benchmarks/dataset_tool.py --n 20000 --resolution 256 --work /tmp/bigset

Writes N JPEG "photos" (smooth random colour fields with grain, sides drawn between 1.25 R and
2 R, random aspect ratios, so center-crop has work to do and the PNGs' sizes are a photo's, not
noise's) under WORK/photos, once (kept for the next call), then runs the tool into WORK/R.zip
and prints one JSON line: images/s, zip size, the machine. The zip can serve the streaming data
path's measurements (a dataset larger than the in-memory budget).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _machine import machine
from gankit.data.tool import make_dataset


def photos(folder: Path, n: int, resolution: int, seed: int = 0) -> None:
    """N JPEGs in 100 subfolders (a folder of millions stays listable). The tool takes them for
    100 classes: harmless here, and the label path is timed with the rest."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        path = folder / f"{i % 100:02d}" / f"{i:07d}.jpg"
        if path.exists():
            continue
        w, h = (int(s) for s in rng.uniform(1.25, 2.0, 2) * resolution)
        field = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        grain = rng.normal(0, 6, (h, w, 3))
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(np.asarray(field) + grain, 0, 255).astype(np.uint8)).save(path, quality=90)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--work", type=Path, required=True, help="folder for the photos (kept) and the zip")
    args = p.parse_args()
    folder = args.work / "photos"
    t0 = time.perf_counter()
    photos(folder, args.n, args.resolution)
    made = time.perf_counter() - t0
    out = args.work / f"{args.resolution}.zip"
    t0 = time.perf_counter()
    r = make_dataset(folder, out, resolution=args.resolution, force=True)
    took = time.perf_counter() - t0
    print(json.dumps({"images": r.count, "resolution": r.resolution, "tool_s": round(took, 1),
                      "tool_images_per_s": round(r.count / took, 1), "zip_bytes": r.size, "zip": str(out),
                      "photos_s": round(made, 1), "machine": machine()}))


if __name__ == "__main__":
    main()
