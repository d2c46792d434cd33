"""A trained vocoder against Griffin-Lim on held-out voices: PESQ, STOI, MCD, the spoken-digit
classifier's accuracy and the real-time factor (gankit.tasks.vocoder.evaluation).

    OMP_NUM_THREADS=1 .venv/bin/python -m gankit train --preset hifigan-cpu --out runs/hifigan-cpu
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vocoder.py --run runs/hifigan-cpu --n 200 \\
        --json benchmarks/results/vocoder-hifigan-cpu.json
    .venv/bin/python benchmarks/vocoder.py --table benchmarks/results/vocoder-*.json

Each call scores --n held-out clips (spoken-digits:test: voices f4, m6, m7, klatt4, which training
never hears; every digit equally) five ways from the same clip: the real clip (the ceiling), the
run's G on its mel, Griffin-Lim with 32 and 100 iterations from the same mel (pseudo-inverse of
the filterbank to a linear magnitude), and SpecGAN's own path (its 128 x 128 linear spectrogram,
16 Griffin-Lim iterations). The real-time factor is compute seconds per audio second with
--threads torch threads (1 by default: the number to compare; re-run alone for timings). --json
records it with the run's training time and steps and the machine, and the run's G paired with each
baseline on the same clips (per-clip PESQ differences, STOI on blocks of 10 clips: evaluation.paired);
--versus RUN2 ... scores other runs' G on the same clips and pairs --run's against them too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gankit.api import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, training_seconds  # noqa: E402

METHODS = ("real", "gankit", "griffin_lim_32", "griffin_lim_100", "specgan_gl16")
LABELS = {"real": "real clip (the ceiling)", "gankit": "gankit {arch} ({preset}, {steps} steps)",
          "griffin_lim_32": "Griffin-Lim, 32 iterations (same mel)", "griffin_lim_100": "Griffin-Lim, 100 iterations "
          "(same mel)", "specgan_gl16": "SpecGAN's path: linear spectrogram, Griffin-Lim 16"}


def measure(args) -> dict:
    from gankit.tasks.vocoder.evaluation import evaluate_vocoder

    torch.set_num_threads(args.threads)
    run = load(args.run, device="cpu", ema=True)
    others = {}
    for path in args.versus or ():
        other = load(path, device="cpu", ema=True)
        if other.config.vocoder.n_mels != run.config.vocoder.n_mels or other.config.vocoder.hop != run.config.vocoder.hop:
            raise SystemExit(f"--versus {path}: its mel ({other.config.vocoder.n_mels} bands, hop "
                             f"{other.config.vocoder.hop}) is not --run's; expected a vocoder of the same mel")
        others[f"versus {path} (step {other.step})"] = other.nets["G"]
    r = evaluate_vocoder(run.config, run.nets["G"], "cpu", args.n, methods=args.methods.split(","), run=str(run.dir),
                         step=run.step, others=others)
    # --run may name one checkpoint (RUN/checkpoints/step_N.pt): train.log then covers more steps than it
    run_dir, whole = (Path(args.run).parent.parent, False) if Path(args.run).is_file() else (Path(args.run), True)
    log = [ln for ln in (run_dir / "train.log").read_text().splitlines() if "steps/s" in ln or "time" in ln]
    return {"preset": run.config.preset, "arch": run.config.vocoder.g_arch, "steps": run.step,
            "training_s": training_seconds(run_dir) if whole else None,
            "g_params": sum(p.numel() for p in run.nets["G"].parameters()), "results": r, "machine": machine(),
            "train_log_tail": log[-3:], "command": " ".join(sys.argv)}


def label(method: str, d: dict) -> str:
    """A row's name; the run's G architecture from its JSON (files written before it was
    recorded are HiFi-GAN runs)."""
    arch = {"hifigan": "HiFi-GAN", "vocos": "Vocos"}[d.get("arch", "hifigan")]
    return LABELS.get(method, method).format(arch=arch, preset=d.get("preset"), steps=d.get("steps"))


def table(paths: list[str]) -> str:
    rows = ["| method | PESQ (wb) | STOI | MCD (dB) | digit accuracy | RTF (1 thread) |", "|---|---|---|---|---|---|"]
    for p in paths:
        d = json.loads(Path(p).read_text())
        for k, v in d["results"].items():
            if k in ("protocol", "paired"):
                continue
            rows.append(f"| {label(k, d)} | {v['pesq']} | {v['stoi']} | {v['mcd']} | {v.get('accuracy', '-')} | "
                        f"{v.get('rtf', '-')} |")
    pairs = [(Path(p).name, k, v) for p in paths for k, v in json.loads(Path(p).read_text())["results"]
             .get("paired", {}).items()]
    if pairs:  # the run's G against each baseline on the same clips
        rows += ["", "| results | comparison | PESQ difference (SE) | clips higher | STOI difference (min, max) | "
                 "blocks higher |", "|---|---|---|---|---|---|"]
        rows += [f"| {f} | {k} | {v.get('pesq_diff')} ({v.get('pesq_se')}) | {v.get('pesq_higher')} | "
                 f"{v.get('stoi_diff')} ({v.get('stoi_min')}, {v.get('stoi_max')}) | {v.get('stoi_higher')} |"
                 for f, k, v in pairs]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained vocoder run (its newest checkpoint), or one checkpoint .pt of it")
    ap.add_argument("--n", type=int, default=200, help="held-out clips (default 200: 20 per digit)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--versus", nargs="+", metavar="RUN", help="other vocoder runs (or checkpoints) of the same mel "
                    "scored on the same clips and paired against --run's G (an ablation: stage against stage)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of these results")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    r = measure(args)
    text = json.dumps(r, indent=1)
    if args.json:
        from gankit.util import write_text_atomic

        write_text_atomic(Path(args.json), text + "\n")
    print(text)


if __name__ == "__main__":
    main()
