"""The data path at 256 px on this machine: loader throughput, peak memory, time to the first step,
exact resume and a 2-process run, streaming from a zip that `gankit dataset` made.

    .venv/bin/python benchmarks/data_path.py [--sizes 5000 20000] [--work DIR] [--json OUT]

1. Makes a folder of N varied colour JPEG photos for each size (random crops of scikit-image's
   bundled photos, flipped, brightness-jittered; 320 px wide, 320-416 px tall), then
   `gankit dataset FOLDER N.zip --resolution 256` (timed: the tool's images/s).
2. Loader alone: `StreamData.batches` over the largest zip, batches of 32 at 256 px, with 0 and 2
   worker processes (images/s after a warm-up), beside the resident path (indexing the decoded
   uint8 tensor and converting to model space) on 2,000 of the images held in memory.
3. Peak RSS (the training process and its worker processes summed, polled every 0.1 s) of a short
   `gankit train` at 256 px streaming from each zip, and of the resident path on the smallest.
4. Time to the first step: wall time of a 1-step `gankit train` on the largest zip, streaming and
   resident (process start, torch import, model build, the decode where resident, one step, the
   checkpoint).
5. Exact resume: a 300-step streaming run (64 px from the largest zip, mirrored) SIGKILLed after its
   step-100 checkpoint and resumed, against the same run left alone: the final checkpoints'
   networks compared bitwise.
6. A 2-process data-parallel run (`--nproc 2`) streaming from the largest zip: wall time.
The zips stay in the page cache between steps (RAM allows): throughput is decoding, not disk.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

GANKIT = [sys.executable, "-m", "gankit"]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "cat", "colorwheel")
# a small dcgan at 256 px: the loader, not the model, is what is measured
def sets(*kv: str) -> list[str]:
    return [a for x in kv for a in ("--set", x)]


TRAIN = ["--preset", "dcgan", *sets("model.g_width=8", "model.d_width=8", "train.batch=16", "data.channels=3", "log.every=5",
                                     "log.grid_every=100000", "train.precision=fp32")]

_photos = None


def _photo(args) -> None:
    out, i, seed = args
    global _photos
    if _photos is None:
        import skimage.data as d
        _photos = [np.asarray(getattr(d, n)())[..., :3] for n in PHOTOS]
    g = np.random.default_rng((seed, i))
    img = _photos[g.integers(len(_photos))]
    h, w = img.shape[:2]
    s = int(min(h, w) * g.uniform(0.35, 1.0))
    top, left = g.integers(0, h - s + 1), g.integers(0, w - s + 1)
    im = Image.fromarray(img[top:top + s, left:left + s]).resize((320, int(320 * g.uniform(1.0, 1.3))), Image.BICUBIC)
    if g.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    a = np.asarray(im).astype(np.float32) * g.uniform(0.7, 1.2)
    Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(out / f"{i:06d}.jpg", quality=90)


def photos(out: Path, n: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with Pool(2) as pool:
        pool.map(_photo, [(out, i, 0) for i in range(n)], chunksize=64)
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS")) * 1024
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (OSError, StopIteration):
            pass
    return total


def run(cmd: list[str], poll: bool = False) -> dict:
    """Run a command; its wall time and (with poll) the peak RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    if poll:
        def watch():
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss(proc.pid))
                time.sleep(0.1)
        th = threading.Thread(target=watch, daemon=True)
        th.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak[0] / 2**20) if poll else None, "out": out}


def loader_rate(zip_path: Path, workers: int, batches: int = 40, warm: int = 4) -> float:
    from gankit.data.archive import ImageArchive
    from gankit.data.stream import StreamData

    a = ImageArchive(str(zip_path))
    data = StreamData(a, str(zip_path), a.shape, "cpu", workers=workers, prefetch=2)
    it = data.batches(32, seed=0)
    for _ in range(warm):
        next(it)
    t0 = time.perf_counter()
    n = sum(len(next(it)) for _ in range(batches))
    rate = n / (time.perf_counter() - t0)
    data.close()
    return rate


def resident_rate(zip_path: Path, n: int = 2000, batches: int = 200) -> float:
    from gankit.data import load_data
    from gankit.data.sampler import BatchSampler

    data = load_data(str(zip_path), load="memory")
    data.x = data.x[:n].clone()
    s = BatchSampler(n, 32, 0)
    t0 = time.perf_counter()
    for _ in range(batches):
        data.to_model(data.x[s.next()])
    return 32 * batches / (time.perf_counter() - t0)


def weights(ck: Path) -> dict:
    st = torch.load(ck, map_location="cpu", weights_only=True)
    return st["nets"]


def exact_resume(zip_path: Path, work: Path) -> dict:
    common = [*GANKIT, "train", "--data", str(zip_path), "--preset", "dcgan", "--resolution", "64", "--steps", "300",
              *sets("data.load=stream", "data.mirror=true", "data.channels=3", "train.batch=16", "log.every=10",
                    "log.grid_every=100000", "log.ckpt_every=50", "train.precision=fp32")]
    whole, killed = work / "whole", work / "killed"
    run([*common, "--out", str(whole)])
    proc = subprocess.Popen([*common, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = killed / "checkpoints"
    while proc.poll() is None and not (ck / "step_00000050.pt").exists():  # last.pt is then step 100's
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        raise SystemExit("the run ended before the kill; give it more steps")
    run([*GANKIT, "train", "--resume", str(killed), "--steps", "300"])
    a, b = weights(whole / "checkpoints" / "last.pt"), weights(killed / "checkpoints" / "last.pt")
    same = all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    return {"killed_after_checkpoint": 100, "steps": 300, "bitwise_equal": same}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    p.add_argument("--work", type=Path, default=None, help="keep the photos and zips here (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gankit-data-path-"))
    work.mkdir(parents=True, exist_ok=True)
    res = {"machine": machine(), "sizes": args.sizes, "tool": {}, "train_stream": {}, "first_step": {}}
    zips = {}
    for n in args.sizes:
        folder, z = work / f"photos-{n}", work / f"faces-{n}.zip"
        if not z.exists():
            photos(folder, n)
            r = run([*GANKIT, "dataset", str(folder), str(z), "--resolution", "256"])
            res["tool"][n] = {"wall_s": r["wall_s"], "images_per_s": round(n / r["wall_s"], 1),
                              "zip_gb": round(z.stat().st_size / 1e9, 2)}
        zips[n] = z
        print(json.dumps({n: res["tool"].get(n)}), flush=True)
    big, small = zips[max(args.sizes)], zips[min(args.sizes)]
    res["loader_img_s"] = {f"workers_{w}": round(loader_rate(big, w), 1) for w in (0, 2)}
    res["resident_img_s"] = round(resident_rate(small), 1)
    print(json.dumps({"loader": res["loader_img_s"], "resident": res["resident_img_s"]}), flush=True)
    for n, z in zips.items():
        r = run([*GANKIT, "train", "--data", str(z), *TRAIN, "--resolution", "256", "--steps", "30", *sets("data.load=stream"),
                 "--out", str(work / f"run-stream-{n}")], poll=True)
        res["train_stream"][n] = {"peak_rss_mb": r["peak_rss_mb"], "wall_s": r["wall_s"]}
        print(json.dumps({f"stream {n}": res["train_stream"][n]}), flush=True)
    r = run([*GANKIT, "train", "--data", str(small), *TRAIN, "--resolution", "256", "--steps", "30", *sets("data.load=memory"),
             "--out", str(work / "run-memory")], poll=True)
    res["train_memory"] = {min(args.sizes): {"peak_rss_mb": r["peak_rss_mb"], "wall_s": r["wall_s"]}}
    for mode in ("stream", "memory"):
        r = run([*GANKIT, "train", "--data", str(big), *TRAIN, "--resolution", "256", "--steps", "1", *sets(f"data.load={mode}"),
                 "--out", str(work / f"run-first-{mode}")], poll=True)
        res["first_step"][mode] = {"wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"]}
        print(json.dumps({f"first step {mode}": res["first_step"][mode]}), flush=True)
    res["exact_resume"] = exact_resume(big, work)
    print(json.dumps(res["exact_resume"]), flush=True)
    r = run([*GANKIT, "train", "--data", str(big), "--nproc", "2", *TRAIN, "--steps", "20",
             "--resolution", "64", *sets("data.load=stream"), "--out", str(work / "run-ddp")])
    res["ddp_2proc"] = {"steps": 20, "resolution": 64, "wall_s": r["wall_s"]}
    print(json.dumps(res["ddp_2proc"]), flush=True)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
