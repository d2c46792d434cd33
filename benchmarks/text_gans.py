"""Text GANs against their MLE baseline: BLEU, self-BLEU and held-out NLL at several temperatures.

    .venv/bin/python benchmarks/text_gans.py --preset text-mle --out runs/bench-text-mle \\
        --json benchmarks/results/text-text-mle.json
    .venv/bin/python benchmarks/text_gans.py --preset relgan --out runs/bench-relgan --json ...
    .venv/bin/python benchmarks/text_gans.py --table benchmarks/results/text-{text-mle,relgan,seqgan}-*.json \
        --plot docs/img/text_tradeoff.png

Each call trains one preset as it is (`gankit.train`; an existing finished --out is reused), then
scores its final G with `gankit eval`'s text protocol (gankit.tasks.text.evaluation: --n samples
per temperature from seed 0, BLEU-2..5 against the held-out lines, self-BLEU-2..5, unique, novel,
held-out NLL) at each of --temperatures, with real training lines scored the same way, and
times sampling (tokens generated per second at temperature 1, batches of 1,000). --json records
all of it with the training time, steps per second and the machine.

--table renders the results as Markdown tables; --plot draws BLEU-5 (quality) against self-BLEU-5
(diversity, lower is better) with one curve per model over the temperatures and the real-text
point: Caccia et al.'s (2020) quality-diversity comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import gankit
from gankit.config import load_config
from gankit.tasks.text.evaluation import evaluate_text, sample_lines
from gankit.tasks.text.task import vocab_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, training_seconds  # noqa: E402

TEMPERATURES = (0.6, 0.8, 1.0, 1.2)


def measure(args) -> dict:
    out = Path(args.out)
    cfg = load_config(args.preset, overrides=["device=cpu", "log.progress=false", *args.sets])
    done = out / "checkpoints" / "last.pt"
    if not done.exists():
        gankit.train(cfg, str(out))
    run = gankit.load(out)
    if run.step != cfg.train.steps:
        sys.exit(f"{out}: at step {run.step} of {cfg.train.steps}; resume it (gankit train --resume {out}) first")
    vocab = vocab_of(run.data_meta)
    classes = run.data_meta.get("classes") or []
    r = evaluate_text(run.config, run.G, vocab, classes, "cpu", args.n, args.temperatures, run=str(out),
                      step=run.step)
    t0 = time.perf_counter()
    lines = sample_lines(run.G, vocab, 2000, run.config.text.max_len + 1, 1.0, 1, "cpu")
    dt = time.perf_counter() - t0
    tokens = sum(len(ln) if vocab.level == "char" else len(ln.split()) for ln in lines) + len(lines)  # + <eos>
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    speed: dict[str, list[float]] = {}
    for row in rows:
        if "steps_per_s" in row and "phase" in row:
            speed.setdefault(row["phase"], []).append(row["steps_per_s"])
    return {"preset": args.preset, "sets": args.sets, "run": str(out), "steps": run.step,
            "train_seconds": training_seconds(out),
            "steps_per_s": {k: round(statistics.median(v), 2) for k, v in speed.items()},  # median: robust to a busy window
            "tokens_per_s": tokens / dt, "scores": r, "machine": machine(),
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}


SHARED_SETS = ("eval.every", "train.init", "text.pretrain_steps", "train.steps")  # how every row was run


def label(r: dict) -> str:
    """The preset, and the --set overrides that make this row differ from the preset's recipe."""
    extra = [x for x in r.get("sets", []) if x.split("=")[0] not in SHARED_SETS]
    return r["preset"] + (f" ({', '.join(extra)})" if extra else "")


MOLECULE_KEYS = ("valid", "unique@1k", "unique@10k", "novelty", "intdiv1", "fcd")


def molecule_table(res: list[dict]) -> list[str]:
    """MOSES's metrics, a row per model and temperature, and real training molecules."""
    out = ["| model | T | valid | unique@1k | unique@10k | novelty | IntDiv1 | FCD/Test | NLL (nats/char) |",
           "|---|---|---|---|---|---|---|---|---|"]

    def cells(s):
        return " | ".join(f"{s[k]:.3f}" if k in s else "" for k in MOLECULE_KEYS)

    for r in res:
        for k, v in r["scores"].items():
            if k.startswith("temperature "):
                nll = r["scores"].get("nll")
                out.append(f"| {label(r)} | {k.split()[1]} | {cells(v)} | {'n/a' if nll is None else f'{nll:.3f}'} |")
    out.append(f"| real (training molecules) | | {cells(res[0]['scores']['real'])} | |")
    return out


def table(paths: list[str]) -> str:
    res = [json.loads(Path(p).read_text()) for p in paths]
    if "valid" in res[0]["scores"]["real"]:
        return "\n".join(molecule_table(res) + speed_table(res))
    head = ("| model | T | BLEU-2 | BLEU-3 | BLEU-4 | BLEU-5 | self-BLEU-2 | self-BLEU-3 | self-BLEU-4 | self-BLEU-5 "
            "| unique | novel | NLL (nats/char) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = [head]

    def row(name, t, s, nll):
        cells = [f"{s[f'bleu{k}']:.3f}" for k in (2, 3, 4, 5)] + [f"{s[f'self_bleu{k}']:.3f}" for k in (2, 3, 4, 5)]
        out.append(f"| {name} | {t} | " + " | ".join(cells) + f" | {s['unique']:.3f} | {s['novel']:.3f} | {nll} |")

    for r in res:
        sc = r["scores"]
        for k, v in sc.items():
            if k.startswith("temperature "):
                row(label(r), k.split()[1], v, f"{sc['nll']:.3f}" if "nll" in sc else "n/a")
    row("real (training lines)", "", res[0]["scores"]["real"], "")
    return "\n".join(out + speed_table(res))


def speed_table(res: list[dict]) -> list[str]:
    speed = ["", "| model | steps | training (s) | steps/s by phase (median over log windows) | tokens sampled / s |",
             "|---|---|---|---|---|"]
    speed += [f"| {label(r)} | {r['steps']} | {r['train_seconds']:.0f} | "
              + ", ".join(f"{k} {v}" for k, v in r["steps_per_s"].items()) + f" | {r['tokens_per_s']:,.0f} |"
              for r in res]
    m = res[0]["machine"]
    return speed + ["", f"Machine: {m['cpu']}, torch {m['torch']} ({m['cpu_capability']}), {m['threads']} threads."]


def plot(paths: list[str], dest: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    res = [json.loads(Path(p).read_text()) for p in paths]
    fig = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in res:
        pts = sorted((float(k.split()[1]), v) for k, v in r["scores"].items() if k.startswith("temperature "))
        xs, ys = [v["self_bleu5"] for _, v in pts], [v["bleu5"] for _, v in pts]
        ax.plot(xs, ys, "o-", label=label(r))
        for (t, _), x, y in zip(pts, xs, ys):
            ax.annotate(f"T={t:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    real = res[0]["scores"]["real"]
    ax.plot([real["self_bleu5"]], [real["bleu5"]], "k*", markersize=12, label="real training lines")
    ax.set_xlabel("self-BLEU-5 (lower: more diverse)")
    ax.set_ylabel("BLEU-5 vs held-out lines (higher: better)")
    ax.set_title("quality vs diversity over the sampling temperature")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    print(dest)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="text-mle")
    p.add_argument("--out", help="run directory (kept, and reused when finished)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", type=int, default=1000, help="samples per temperature (default 1000)")
    p.add_argument("--temperatures", type=lambda s: tuple(float(x) for x in s.split(",")), default=TEMPERATURES)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--table", nargs="+", metavar="JSON", help="render results as Markdown and exit")
    p.add_argument("--plot", metavar="PNG", help="with --table: also draw the quality-diversity plot")
    args = p.parse_args()
    if args.table:
        print(table(args.table))
        if args.plot and "valid" not in json.loads(Path(args.table[0]).read_text())["scores"]["real"]:
            plot(args.table, args.plot)
        return
    if not args.out:
        p.error("--out RUN_DIR is required to train")
    r = measure(args)
    s = json.dumps(r, indent=1)
    if args.json:
        Path(args.json).write_text(s)
    print(table([args.json]) if args.json else s)


if __name__ == "__main__":
    main()
