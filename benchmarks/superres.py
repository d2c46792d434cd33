"""Super-resolution against bicubic and nearest-neighbour upscaling, and its speed and memory.

    .venv/bin/python benchmarks/superres.py --out runs/bench-sr --figures docs/img --json BENCH.json
    .venv/bin/python benchmarks/superres.py --only speed          # megapixels/s and peak memory only

What is measured (CPU; the shipped presets, seed 0):

1. Quality, x4, on held-out images never trained on (`gankit.tasks.superres.evaluation`: PSNR
   and SSIM on the Y channel, 4 px shaved, per image then the mean):
   - `photos:test` (the scikit-image photos held out: chelsea, rocket, immunohistochemistry,
     camera, grass, each centre-cropped to at most 256 x 256): bicubic, nearest, `srresnet`
     (L1 only) and `srgan` (the same L1 phase, then the relativistic GAN phase);
   - `mnist:test` (7 -> 28, 10,000 digits): bicubic, nearest and `srresnet` trained on MNIST,
     with the feature network's label accuracy and FID of the upscaled digits.
2. Video: a 24-frame pan over the largest held-out photo (exact ground-truth frames), x4:
   per-frame PSNR/SSIM on Y and TecoGAN's temporal optical-flow error tOF (OpenCV Farneback)
   against the ground truth, for srresnet and bicubic.
3. Speed and memory of `gankit superres` (tiled, 128 LR px tiles, 16 px of context) on a
   1,000 x 1,000 RGB input at x4 (a 4,000 x 4,000 output), against PIL's bicubic on the same
   input, each in its own process: output megapixels per second and the process's peak RSS.

Writes the run directories under --out, a side-by-side crop (bicubic | srresnet | srgan | HR)
into --figures, a table on stdout and --json with every number, the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import gankit
from _machine import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gankit import viz
from gankit.config import load_config
from gankit.data.superres import downscale, modcrop
from gankit.metrics.sr import upscale
from gankit.tasks.superres.evaluation import evaluate_superres, held_out, upscale_with


def train(preset: str, out: Path, sets: list[str]) -> tuple[gankit.Run, float]:
    cfg = load_config(preset, overrides=["log.progress=false", "device=cpu", *sets])
    t0 = time.perf_counter()
    run = gankit.train(cfg, str(out))
    return run, time.perf_counter() - t0


def quality(args, res: dict) -> None:
    runs = {}
    for preset in ("srresnet", "srgan"):
        run, secs = train(preset, args.out / preset, [])
        r = evaluate_superres(run.config, run.nets["G"])
        res[f"photos {preset}"] = {**r, "train_seconds": round(secs, 1), "steps": run.step}
        runs[preset] = run
        print(f"{preset} on photos:test: gankit {r['gankit']}, bicubic {r['bicubic']} ({secs:.0f} s)", file=sys.stderr)
    run, secs = train("srresnet", args.out / "srresnet-mnist", ["data.source=mnist", "superres.patch=28",
                                                                f"train.steps={args.mnist_steps}", "train.batch=64"])
    r = evaluate_superres(run.config, run.nets["G"])
    res["mnist srresnet"] = {**r, "train_seconds": round(secs, 1), "steps": run.step}
    print(f"srresnet on mnist:test: {r}", file=sys.stderr)
    if args.figures:  # a 96 px HR crop of each held-out photo: bicubic | srresnet | srgan | HR
        cfg = runs["srresnet"].config
        cells = []
        for img in held_out(cfg):
            c, h, w = img.shape
            hr = modcrop(img[None, :, (h - 96) // 2:(h - 96) // 2 + 96, (w - 96) // 2:(w - 96) // 2 + 96], 4)
            lr = downscale(hr, 4)
            cells += [upscale(lr, 4, "bicubic")[0], upscale_with(runs["srresnet"].nets["G"], lr, 4)[0],
                      upscale_with(runs["srgan"].nets["G"], lr, 4)[0], hr[0]]
        viz.save_grid(torch.stack(cells), args.figures / "superres-photos.png", nrow=4)


def video(args, res: dict) -> None:
    """A slow pan over a held-out photo (exact ground-truth frames): per-frame PSNR/SSIM on Y and
    TecoGAN's tOF against the ground truth, for gankit and bicubic."""
    from gankit.metrics.sr import sr_scores, tof

    run = gankit.load(str(args.out / "srresnet"))
    photo = max(held_out(run.config), key=lambda t: t.shape[1] * t.shape[2])  # the largest held-out photo
    c, h, w = photo.shape
    side, n = 128, 24
    step = max(1, (w - side) // n)
    hr = torch.stack([photo[:, (h - side) // 2:(h - side) // 2 + side, i * step:i * step + side] for i in range(n)])
    lr = downscale(hr, 4)
    outs = {"gankit": upscale_with(run.nets["G"], lr, 4), "bicubic": upscale(lr, 4, "bicubic")}
    res["video"] = {"clip": f"{n} frames of {side}x{side}, a pan of {step} px/frame over the largest held-out photo"}
    for k, v in outs.items():
        per = [sr_scores(v[i:i + 1], hr[i:i + 1], 4) for i in range(n)]
        res["video"][k] = {"psnr_y_mean": sum(p["psnr_y"] for p in per) / n,
                           "psnr_y_min": min(p["psnr_y"] for p in per),
                           "ssim_y_mean": sum(p["ssim_y"] for p in per) / n, "tof": tof(v, hr)}
    res["video"]["ground truth"] = {"tof": tof(hr, hr)}
    print(f"video: {res['video']}", file=sys.stderr)


SPEED = """
import sys, time, numpy as np, torch
from PIL import Image
side, mode, run = int(sys.argv[1]), sys.argv[2], sys.argv[3]
img = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
t0 = time.perf_counter()
if mode == "bicubic":
    out = np.asarray(Image.fromarray(img).resize((4 * side, 4 * side), Image.BICUBIC))
else:
    import gankit
    from gankit.tasks.superres.infer import upscale_image
    r = gankit.load(run)
    t0 = time.perf_counter()
    out = upscale_image(r, img, tile=128, overlap=16)
secs = time.perf_counter() - t0
# VmHWM: this process's own peak resident memory (ru_maxrss would carry the parent's peak over
# fork + exec).
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
print(out.shape[0] * out.shape[1] / 1e6 / secs, hwm / 1024, secs)
"""


def speed(args, res: dict) -> None:
    run_dir = args.out / "srresnet"
    if not (run_dir / "checkpoints").is_dir():  # an untrained run of the preset's size is as fast
        train("srresnet", run_dir, ["train.steps=1"])
    rows = {}
    for mode in ("bicubic", "gankit"):
        out = subprocess.run([sys.executable, "-c", SPEED, str(args.side), mode, str(run_dir)], capture_output=True,
                             text=True, check=True).stdout.split()
        rows[mode] = {"output_megapixels_per_s": round(float(out[0]), 3), "peak_rss_mib": round(float(out[1]), 1),
                      "seconds": round(float(out[2]), 2)}
        print(f"{mode}: {rows[mode]}", file=sys.stderr)
    res["speed"] = {"input": f"{args.side}x{args.side} RGB, x4", "tile": 128, "overlap": 16, **rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench-sr"))
    p.add_argument("--only", choices=("quality", "speed"))
    p.add_argument("--mnist-steps", type=int, default=1500)
    p.add_argument("--side", type=int, default=1000)
    p.add_argument("--figures", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    res = {"command": " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if args.only in (None, "quality"):
        quality(args, res)
    if args.only in (None, "quality"):
        video(args, res)
    if args.only in (None, "speed"):
        speed(args, res)
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
