"""WaveGAN against SpecGAN on spoken digits, with real clips and a noise floor beside them.

    .venv/bin/python benchmarks/audio_gans.py --preset wavegan-cpu --out runs/bench-wavegan-cpu \\
        --json benchmarks/results/audio-wavegan-cpu.json
    .venv/bin/python benchmarks/audio_gans.py --preset specgan-cpu --out runs/bench-specgan-cpu --json ...
    .venv/bin/python benchmarks/audio_gans.py --floor --json benchmarks/results/audio-floor.json
    .venv/bin/python benchmarks/audio_gans.py --table benchmarks/results/audio-*.json
    .venv/bin/python benchmarks/audio_gans.py --figure docs/img/audio_samples.png \
        --runs runs/bench-wavegan-cpu runs/bench-specgan-cpu
    .venv/bin/python benchmarks/audio_gans.py --accuracy benchmarks/results/audio-specgan-cond-cpu.json

Each --preset call trains the preset as it is (`gankit.train`; an existing finished --out is
reused), then scores its final G (or, with --checkpoint PT, that checkpoint of the --out run, kept
at some step: the run stopped or went on after it) with `gankit eval`'s audio protocol
(gankit.tasks.audio.evaluation: --n clips from seed 0, the bundled spoken-digit classifier's
Inception score, FID on its features against the held-out voices, and class KL), with --n real
training clips scored the same way, and times generation (audio seconds made per wall second,
batches of 250, SpecGAN's Griffin-Lim included). --json records it with the training time, the
steps per second and the machine.

--figure draws 8 real training clips' spectrograms above 8 samples of each run (seed 0), as
every party is scored (training statistics, low frequencies at the bottom).

--envelope RUN prints the loudness envelope (RMS over each quarter of the clip, mean over 200
clips) of the run's samples beside 200 real training clips'.

--confusion RUN prints, for a digit-conditional run, the classifier's three commonest answers for
each asked digit (--n clips, seed 0, as gankit eval asks them).

--aux RUN prints, for an AC-GAN run (model.d_head: acgan), how often D's own digit classifier
names the digit of 1,000 real held-out clips, of 1,000 real training clips, and of G's output
for the asked digit (--n spectrograms from seed 0, the digits in turn, as D sees them in training:
before Griffin-Lim), beside the bundled classifier on the same fakes made sound.

--accuracy prints, for digit-conditional runs' results, the spoken-digit classifier's accuracy
against the digit asked for ("say N"), per digit and the mean, beside real held-out clips' and
chance.

--floor scores the classical lower bound instead: Gaussian noise whose every frequency bin has
the training clips' mean log magnitude (spectrally matched noise, random phase), n clips.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import gankit
from gankit.config import load_config
from gankit.data.spectrogram import griffin_lim
from gankit.data.speech import CLIP, RATE, train_spectrogram_stats
from gankit.tasks.audio.evaluation import evaluate_audio, protocol, real_clips, sample_clips, score_clips, scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, training_seconds  # noqa: E402


def matched_noise(n: int, seed: int = 0) -> torch.Tensor:
    """n clips (n, CLIP) of noise with the training set's mean log magnitude in every bin: that
    magnitude with a random phase (Griffin-Lim's start, no iterations)."""
    mu, _ = train_spectrogram_stats()
    logmag = mu[None, :, None].expand(n, -1, 128)  # (n, 128 bins, 128 frames)
    return griffin_lim(logmag, CLIP, iters=0, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


def seconds_to(out: Path, step: int) -> float:
    """Training seconds of the run in `out` up to `step`, from metrics.jsonl's wall-clock stamps: the
    row at `step` less the first row, plus the first row's own steps at its speed."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "time" in r and "steps_per_s" in r]
    first, at = rows[0], next(r for r in rows if r["step"] == step)
    return at["time"] - first["time"] + first["step"] / first["steps_per_s"]


def measure(args) -> dict:
    out = Path(args.out)
    cfg = load_config(args.preset, overrides=[f"device={args.device}", "log.progress=false", *args.sets])
    if args.checkpoint:  # a checkpoint the run wrote at some step (the run stopped, or went on, after it)
        run = gankit.load(args.checkpoint, device=args.device)
    else:
        if not (out / "checkpoints" / "last.pt").exists():
            gankit.train(cfg, str(out))
        run = gankit.load(out, device=args.device)
        if run.step != cfg.train.steps:
            sys.exit(f"{out}: at step {run.step} of {cfg.train.steps}; resume it (gankit train --resume {out}) first")
    t0 = time.perf_counter()
    r = evaluate_audio(run.config, run.G, run.data_meta, run.device, args.n, run=str(out), step=run.step)
    eval_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sample_clips(run.config, run.G, run.data_meta, 500, run.device, seed=1,
                 labels=torch.arange(500) % run.n_classes if run.conditional else None)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    gen_s = time.perf_counter() - t0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    speed = [row["steps_per_s"] for row in rows if "steps_per_s" in row and row["step"] <= run.step]
    return {"preset": args.preset, "sets": args.sets, "run": str(args.checkpoint or out), "steps": run.step,
            "train_seconds": seconds_to(out, run.step) if args.checkpoint else training_seconds(out),
            "steps_per_s": round(statistics.median(speed), 3),
            "audio_s_per_s": 500 * CLIP / RATE / gen_s, "eval_seconds": eval_s, "scores": r,
            "machine": machine(), "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}


def floor(args) -> dict:
    ev = scorer(None, "cpu")
    scores = {"noise": score_clips(ev, matched_noise(args.n)), "real": score_clips(ev, real_clips(args.n)),
              "protocol": {**protocol(ev, args.n, 0), "real": f"{args.n} training clips"}}
    return {"preset": "noise", "scores": scores, "machine": machine(), "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d")}


def name_of(r: dict) -> str:
    """A result's row name: its preset, and the --set overrides it was trained with."""
    return " ".join([r["preset"], *r.get("sets", [])])


def table(paths: list[str]) -> str:
    res = [json.loads(Path(p).read_text()) for p in paths]
    out = ["| clips | classifier IS (max 10) | FID (classifier features) | class KL | training | steps/s | "
           "audio s made / s |", "|---|---|---|---|---|---|---|"]

    def cells(s):
        return f"{s['is']:.2f} | {s['fid']:.2f} | {s['class_kl']:.3f}"

    real = None
    # WaveGAN, then SpecGAN, each by steps; the floor last
    for r in sorted(res, key=lambda r: (r["preset"] == "noise", not r["preset"].startswith("wavegan"), r.get("steps", 0))):
        sc = r["scores"]
        real = real or sc["real"]
        if r["preset"] == "noise":
            out.append(f"| spectrally matched noise (floor) | {cells(sc['noise'])} | | | |")
        else:
            out.append(f"| {name_of(r)}, {r['steps']} steps | {cells(sc['gankit'])} | "
                       f"{r['train_seconds'] / 60:.0f} min | {r['steps_per_s']:.2f} | {r['audio_s_per_s']:.0f} |")
    out.append(f"| real training clips (ceiling) | {cells(real)} | | | |")
    m = res[0]["machine"]
    n = res[0]["scores"]["protocol"]["n"]
    return "\n".join(out + ["", f"n = {n} clips each; FID against the 1,000 held-out clips (spoken-digits:test, "
                                f"voices training never heard). Machine: {m['cpu']}, torch {m['torch']} "
                                f"({m['cpu_capability']}), {m['threads']} threads."])


def accuracy_table(paths: list[str]) -> str:
    """Per-digit accuracy of conditional runs' clips against the asked digit, beside the held-out
    real clips (the ceiling) and chance."""
    res = [json.loads(Path(p).read_text()) for p in paths]
    res = [r for r in res if "accuracy" in r["scores"]]
    digits = [k for k in res[0]["scores"]["accuracy"]["gankit"] if k != "mean"]
    out = ["| clips | mean | " + " | ".join(digits) + " |", "|---|" + "---|" * (len(digits) + 1)]

    def row(name, a):
        return f"| {name} | **{a['mean']:.3f}** | " + " | ".join(f"{a[d]:.2f}" for d in digits) + " |"

    for r in sorted(res, key=lambda r: r["steps"]):
        name = f"{name_of(r)}, {r['steps']} steps: \"say N\" (N asked, G(z, N))"
        out.append(row(name, r["scores"]["accuracy"]["gankit"]))
    acc = res[0]["scores"]["accuracy"]
    out.append(row("real held-out clips (ceiling)", acc["held_out"]))
    out.append(f"| chance | {acc['chance']:.3f} | " + " | ".join(f"{acc['chance']:.2f}" for _ in digits) + " |")
    return "\n".join(out)


def confusion(run_dir: str, n: int) -> None:
    """What the classifier hears for each asked digit of a conditional run (n clips from seed 0, the
    digits in turn, as `gankit eval` asks): its three commonest answers and their counts."""
    from collections import Counter

    from gankit.data.speech import DIGITS, spectrogram_images
    from gankit.tasks.audio.evaluation import classify

    run = gankit.load(run_dir)
    asked = torch.arange(n) % run.n_classes
    clips = sample_clips(run.config, run.G, run.data_meta, n, "cpu", 0, labels=asked)
    mu, sigma = train_spectrogram_stats()
    heard = classify(scorer(None, "cpu"), spectrogram_images(clips, mu, sigma)).argmax(1)
    for k in range(run.n_classes):
        top = Counter(heard[asked == k].tolist()).most_common(3)
        print(f"{DIGITS[k]:>6}: " + ", ".join(f"{DIGITS[i]} {c}" for i, c in top))


def aux_accuracy(run_dir: str, n: int) -> None:
    """D's AC-GAN classifier against the truth on real clips and against the asked digit on G's
    spectrograms, beside the bundled classifier on the same fakes (Griffin-Lim'd)."""
    from gankit.data.spectrogram import log_spectrogram, normalise
    from gankit.data.speech import spectrogram_images, spoken_digits
    from gankit.tasks.audio.evaluation import classify, held_out_clips
    from gankit.tasks.audio.infer import decode
    from gankit.tasks.audio.task import networks

    run = gankit.load(run_dir)
    cfg, meta = run.config, run.data_meta
    if cfg.model.d_head != "acgan":
        raise SystemExit(f"--aux: {run_dir} has model.d_head {cfg.model.d_head!r}, not acgan")
    D = networks(cfg, run.n_classes)[1]
    D.load_state_dict(torch.load(run.checkpoint, map_location="cpu", weights_only=True)["nets"]["D"])
    D.eval()
    mu, sigma = (torch.tensor(meta[k]) for k in ("spec_mu", "spec_sigma"))

    @torch.no_grad()
    def aux_says(specs: torch.Tensor) -> torch.Tensor:  # (N, 1, 128, 128) -> (N,) D's digit
        return torch.cat([D.aux(D.features(b)).argmax(1) for b in specs.split(250)])

    def as_d_sees(clips: torch.Tensor) -> torch.Tensor:  # float (N, T) -> normalised log spectrograms
        return torch.cat([normalise(log_spectrogram(c), mu, sigma)[:, None] for c in clips.split(250)])

    x, y = held_out_clips(1000)
    train = spoken_digits("train")
    pick = slice(None, None, max(1, len(train.x) // 1000))
    xt, yt = torch.from_numpy(train.x[pick][:1000]).float() / 32767.0, torch.from_numpy(train.y[pick][:1000]).long()
    asked = torch.arange(n) % run.n_classes
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # sample_clips's latents: the clips gankit eval scores
        specs = torch.cat([run.G(torch.randn(min(250, n - i), cfg.model.z_dim, generator=g), asked[i:i + 250])
                           for i in range(0, n, 250)])
    clips = torch.cat([decode(cfg, specs[i:i + 250], mu, sigma, torch.Generator().manual_seed(i))
                       for i in range(0, n, 250)])
    heard = classify(scorer(None, "cpu"), spectrogram_images(clips, *train_spectrogram_stats())).argmax(1)
    rows = [("real held-out clips (truth)", aux_says(as_d_sees(x)), y),
            ("real training clips (truth)", aux_says(as_d_sees(xt)), yt),
            ("G's spectrograms (asked digit)", aux_says(specs), asked)]
    print(f"{run_dir} (step {run.step}):")
    for name, got, want in rows:
        print(f"  D's classifier on {name}: {float((got == want).float().mean()):.3f}")
    print(f"  the bundled classifier on the same fakes made sound (asked digit): "
          f"{float((heard == asked).float().mean()):.3f}")


def quarter_rms(clips: torch.Tensor) -> list[float]:
    """RMS of each quarter of float clips (N, T), averaged over the clips."""
    return [round(float(q.pow(2).mean(1).sqrt().mean()), 3) for q in clips.chunk(4, dim=1)]


def envelope(run_dir: str) -> None:
    run = gankit.load(run_dir)
    y = torch.arange(200) % run.n_classes if run.conditional else None
    print(f"{run_dir} (step {run.step}): "
          f"{quarter_rms(sample_clips(run.config, run.G, run.data_meta, 200, 'cpu', labels=y))}")
    print(f"real training clips:      {quarter_rms(real_clips(200))}")


def figure(runs: list[str], dest: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gankit.data.speech import spectrogram_images
    from gankit.viz import make_grid

    mu, sigma = train_spectrogram_stats()
    rows = [("real training clips", real_clips(8))]
    for d in runs:
        run = gankit.load(d)
        y = torch.arange(8) % run.n_classes if run.conditional else None  # a conditional run: digits 0 to 7
        rows.append((f"{run.config.preset}, step {run.step}",
                     sample_clips(run.config, run.G, run.data_meta, 8, "cpu", labels=y)))
    fig = Figure(figsize=(10, 1.45 * len(rows)))
    FigureCanvasAgg(fig)
    for i, (title, clips) in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, i + 1)
        ax.imshow(make_grid(spectrogram_images(clips, mu, sigma), nrow=8)[:, :, 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset")
    ap.add_argument("--out")
    ap.add_argument("--checkpoint", metavar="PT", help="with --preset and --out (the run): score this checkpoint of "
                    "it, at its own step, instead of training; the training time comes from metrics.jsonl")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="train and score here (default cpu)")
    ap.add_argument("--json")
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--table", nargs="+", metavar="RESULT.json")
    ap.add_argument("--accuracy", nargs="+", metavar="RESULT.json", help="conditional runs: say-N accuracy per digit")
    ap.add_argument("--figure", metavar="PNG")
    ap.add_argument("--envelope", metavar="RUN")
    ap.add_argument("--confusion", metavar="RUN", help="a conditional run: what the classifier hears per asked digit")
    ap.add_argument("--runs", nargs="+", default=[], metavar="RUN")
    ap.add_argument("--aux", metavar="RUN", help="an AC-GAN run: D's own classifier on real clips and on G's fakes")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.accuracy:
        print(accuracy_table(args.accuracy))
        return
    if args.figure:
        figure(args.runs, args.figure)
        return
    if args.envelope:
        envelope(args.envelope)
        return
    if args.confusion:
        confusion(args.confusion, args.n)
        return
    if args.aux:
        aux_accuracy(args.aux, args.n)
        return
    if not args.floor and not (args.preset and args.out):
        ap.error("give --preset and --out, --floor, --table, --accuracy, --figure or --envelope")
    res = floor(args) if args.floor else measure(args)
    text = json.dumps(res, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
