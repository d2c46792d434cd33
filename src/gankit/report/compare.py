"""The page comparing several runs: a table of each run's final numbers (#compare-table) and, for
every scalar any of them logged, one plot with a curve per run in the run's colour."""

from __future__ import annotations

from html import escape

from gankit.report.plots import COLORS, LABELS, Series, groups, line_plot
from gankit.report.read import RunData, keys, series
from gankit.report.style import better, document, num


def names(runs: list[RunData]) -> list[str]:
    """A short unique label per run: the folder's name, with as many parent folders as it takes
    to tell runs of the same name apart (bench-ada/n100-ADA vs bench-ada-long/n100-ADA)."""
    for depth in range(1, 8):
        out = ["/".join(r.path.resolve().parts[-depth:]) for r in runs]
        if len(set(out)) == len(out):
            return out
    return [str(r.path) for r in runs]


def render(runs: list[RunData]) -> str:
    labels = names(runs)
    colors = [COLORS[i % len(COLORS)] for i in range(len(runs))]
    train_names = list(dict.fromkeys(k for r in runs for k in keys(r.train_rows)))
    eval_names = list(dict.fromkeys(k for r in runs for k in keys(r.eval_rows)))
    legend = "".join(f'<span class="key"><i style="background:{c}"></i>{escape(n)}</span>'
                     for n, c in zip(labels, colors))
    header = (f"<h1>Comparing {len(runs)} runs</h1>"
              f'<div class="meta"><span class="keys">{legend}</span></div>')
    body = _table(runs, labels, colors, eval_names)
    body += _plots("Training curves", "curves", [r.train_rows for r in runs], labels, colors,
                   [(LABELS.get(k, k), [k]) for _, ks in groups(train_names) for k in ks])
    if eval_names:
        body += _plots("Evaluation metrics", "evaluation", [r.eval_rows for r in runs], labels, colors,
                       [(k, [k]) for k in eval_names], markers=True)
    return document(f"gankit: comparing {len(runs)} runs", header, body)


def _table(runs: list[RunData], labels: list[str], colors: list[str], eval_names: list[str]) -> str:
    last_eval = [{k: v for k, v in zip(eval_names, (_last(r.eval_rows, k) for k in eval_names))} for r in runs]
    best: dict[str, float] = {}  # the best run's value per metric, where the direction is known
    for k in eval_names:
        vals = [e[k] for e in last_eval if e[k] is not None]
        if len(vals) > 1 and better(k):  # a best needs two runs to compare
            best[k] = min(vals) if better(k) == "lower" else max(vals)
    head = ("<tr><th>run</th><th>task</th><th>preset</th><th class=\"num\">steps</th><th class=\"num\">loss_d</th>"
            '<th class="num">loss_g</th>' + "".join(f'<th class="num">{escape(k)}</th>' for k in eval_names)
            + "<th>notes</th></tr>")
    rows = []
    for r, label, color, ev in zip(runs, labels, colors, last_eval):
        steps = f"{r.steps_done} / {r.total_steps}" if r.total_steps else str(r.steps_done)
        cells = [f'<td><span class="sw" style="background:{color}"></span><span title="{escape(str(r.path))}">'
                 f"{escape(label)}</span></td>", f"<td>{escape(r.task)}</td>", f"<td>{escape(r.preset)}</td>",
                 f'<td class="num">{steps}</td>']
        for k in ("loss_d", "loss_g"):
            v = _last(r.train_rows, k)
            cells.append(f'<td class="num">{"—" if v is None else num(v)}</td>')
        for k in eval_names:
            v = ev[k]
            cls = "num best" if v is not None and best.get(k) == v else "num"
            cells.append(f'<td class="{cls}">{"—" if v is None else num(v)}</td>')
        notes = [f"{len(r.warnings)} warning(s)"] if r.warnings else []
        notes += [m for m in r.missing if m.startswith(("no ", "config.yaml could not"))]
        cells.append(f'<td class="muted">{escape("; ".join(notes))}</td>')
        rows.append(f'<tr>{"".join(cells)}</tr>')
    note = ("final training row's losses and each metric's latest evaluation; bold: the best run by that "
            "metric (where lower or higher is known to be better)")
    return (f'<section id="summary"><h2>Final numbers</h2><p class="note">{escape(note)}.</p>'
            f'<div class="scroll"><table id="compare-table">{head}{"".join(rows)}</table></div></section>')


def _last(rows: list[dict], key: str) -> float | None:
    xs, ys = series(rows, key)
    return ys[-1] if ys else None


def _plots(title: str, anchor: str, row_sets: list[list[dict]], labels: list[str], colors: list[str],
           plots: list[tuple[str, list[str]]], markers: bool | None = None) -> str:
    figs = []
    for name, (key,) in plots:
        lines = [Series(label, *series(rows, key), color) for rows, label, color in zip(row_sets, labels, colors)]
        lines = [s for s in lines if s.xs]  # a run that never logged this key is not in its legend
        figs.append(line_plot(lines, name if name == key else f"{name} ({key})", markers=markers))
    return (f'<section id="{anchor}"><h2>{escape(title)}</h2><p class="note">one colour per run, as in the '
            f'table above.</p><div class="plots">{"".join(figs)}</div></section>')
