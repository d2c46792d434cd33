"""augment-eval's report: the one-line `summarize`, the markdown `table` and the accuracy-vs-n
`plot`, all from the JSON record the driver writes."""

from __future__ import annotations

from pathlib import Path

from gankit.apps.augment_eval.protocol import ARMS, RATIO_ARMS


def summarize(record: dict) -> str:
    parts = []
    for key, r in record["results"].items():
        bar = r["arms"]["classical"]["mean"]
        wins = [f"{a} {r['arms'][a]['mean']:.4f}" for a, v in r["vs_classical"].items() if v["beats_classical"]]
        best = max(r["vs_classical"], key=lambda a: r["arms"][a]["mean"])
        parts.append(f"n={r['n']}: classical {bar:.4f}; " + (f"beaten by {', '.join(wins)}" if wins else
                                                            f"not beaten (best synthetic: {best} {r['arms'][best]['mean']:.4f})"))
    return "synthetic vs classical augmentation: " + "; ".join(parts)


def table(record: dict) -> str:
    p = record["protocol"]
    lines = [f"# augment-eval: test accuracy (mean +- std over {len(p['classifier']['seeds'])} classifier seeds, "
             f"{p['test_images']} test images)", "",
             "| n | arm | synthetic ratio | test accuracy | validation accuracy | vs arm 2 (classical) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in record["results"].values():
        bar = r["arms"]["classical"]["mean"]
        for arm, a in r["arms"].items():
            if arm in RATIO_ARMS:
                for key, v in a["ratios"].items():
                    mark = " (val-chosen)" if v["ratio"] == a["chosen_ratio"] else ""
                    lines.append(f"| {r['n']} | {a['label']} | x{key}{mark} | {v['mean']:.4f} +- {v['std']:.4f} | "
                                 f"{v['val']['mean']:.4f} | {v['mean'] - bar:+.4f} |")
            else:
                ratio = "x1 (no real)" if arm == "synth-only" else "-"
                diff = "bar" if arm == "classical" else f"{a['mean'] - bar:+.4f}"
                lines.append(f"| {r['n']} | {a['label']} | {ratio} | {a['mean']:.4f} +- {a['std']:.4f} | - | {diff} |")
    lines += ["", record["summary"], ""]
    return "\n".join(lines)


def plot(record: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    res = sorted(record["results"].values(), key=lambda r: r["n"])
    ns = [r["n"] for r in res]
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for arm, label in ARMS.items():
        m = [r["arms"][arm]["mean"] for r in res]
        s = [r["arms"][arm]["std"] for r in res]
        if arm in RATIO_ARMS:
            label += " (val-chosen ratio)"
        ax.errorbar(ns, m, yerr=s, marker="o", capsize=3, label=label,
                    linestyle="--" if arm == "classical" else "-")
    if len(ns) > 1:
        ax.set_xscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_xlabel("n (labelled real training images)")
    ax.set_ylabel("test accuracy")
    ax.set_title("classifier accuracy vs n per arm (mean +- std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
