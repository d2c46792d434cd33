"""Line plots as inline SVG text: axes, nice ticks, one polyline per series, a legend.

Written by hand rather than through matplotlib: a report is redrawn at every grid step of a
training run, and a few string joins cost well under a millisecond where a matplotlib figure
costs tens. Long curves are thinned to `MAX_POINTS`; a y-range stretched by a few early spikes
(an untrained G's loss) is clipped to the bulk of the values, and the plot says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from gankit.report.read import finite

MAX_POINTS = 1000
# Tableau 10: distinct on white and for the common colour-vision deficiencies.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf")
W, H = 440, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 18, 8, 34  # margins around the plotting area


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    color: str


def thin(xs: list[float], ys: list[float], n: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """About `n` evenly spaced points, always keeping the first and the last, and every
    non-finite one (so that a gap in the curve survives the thinning)."""
    if len(xs) <= n:
        return xs, ys
    idx = {round(i * (len(xs) - 1) / (n - 1)) for i in range(n)}
    idx = sorted(idx | {i for i, y in enumerate(ys) if not finite(y)})
    return [xs[i] for i in idx], [ys[i] for i in idx]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round numbers (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt(v: float) -> str:
    """A short label: 1.5k for steps, 3 significant digits otherwise."""
    if not finite(v):
        return str(v)
    if abs(v) >= 10_000:
        return f"{v / 1000:g}k"
    if v == int(v):
        return str(int(v))
    return f"{v:.3g}".replace("e-0", "e-")  # 5e-05 -> 5e-5


def _y_range(values: list[float]) -> tuple[float, float, bool]:
    """(lo, hi, clipped): the whole range, or for long series whose extremes lie further outside
    the 1st-99th percentiles than those are apart, the percentiles widened by 10% (True: some
    points are off the plot)."""
    v = sorted(values)
    lo, hi = v[0], v[-1]
    if len(v) >= 50:
        q1, q99 = v[len(v) // 100], v[-1 - len(v) // 100]
        span = q99 - q1 or abs(q99) or 1.0
        if lo < q1 - span or hi > q99 + span:
            return max(lo, q1 - 0.1 * span), min(hi, q99 + 0.1 * span), True
    if hi == lo:  # a constant (a learning rate): centred, with round ticks around it
        pad = abs(lo) * 0.5 or 0.5
        return lo - pad, hi + pad, False
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad, False


def line_plot(series: list[Series], title: str, markers: bool | None = None, legend: bool = True) -> str:
    """One plot against step: a <figure> with the title and legend (HTML, so it wraps) over an
    inline SVG. `markers`: dots on the points (default: for short series, as evaluation curves
    are). Non-finite values leave a gap. `legend=False` where the page has a shared one."""
    series = [s for s in series if any(finite(y) for y in s.ys)]
    cap = f'<figcaption><b>{escape(title)}</b>{_legend(series) if legend else ""}</figcaption>'
    head = f'<figure class="plot">{cap}<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
    if not series:
        return head + f'<text class="empty" x="{W / 2}" y="{H / 2}">no finite values</text></svg></figure>'
    thinned = [Series(s.label, *thin(s.xs, s.ys), s.color) for s in series]
    all_x = [x for s in thinned for x in s.xs]
    all_y = [y for s in thinned for y in s.ys if finite(y)]
    x0, x1 = min(all_x), max(all_x)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1, clipped = _y_range(all_y)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return TOP + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * ph  # clipped points sit on the edge

    parts = [head, f'<rect class="area" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>']
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            y = py(t)
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}"/>'
                         f'<text class="ytick" x="{LEFT - 5}" y="{y + 3.5:.1f}">{fmt(t)}</text>')
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            x = px(t)
            parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}"/>'
                         f'<text class="xtick" x="{x:.1f}" y="{TOP + ph + 15}">{fmt(t)}</text>')
    parts.append(f'<text class="xlabel" x="{LEFT + pw / 2}" y="{H - 3}">step</text>')
    for s in thinned:
        dots = markers if markers is not None else len(s.xs) <= 40
        path, pen = [], "M"
        for x, y in zip(s.xs, s.ys):
            if not finite(y):
                pen = "M"  # a gap
                continue
            path.append(f"{pen}{px(x):.1f} {py(y):.1f}")
            pen = "L"
        parts.append(f'<path class="line" d="{" ".join(path)}" stroke="{s.color}"><title>{escape(s.label)}'
                     f'</title></path>')
        if dots:
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.6" fill="{s.color}"><title>'
                      f'{escape(s.label)} at step {x:g}: {y:.5g}</title></circle>'
                      for x, y in zip(s.xs, s.ys) if finite(y)]
    if clipped:
        parts.append(f'<text class="note" x="{LEFT + 4}" y="{TOP + 12}">y clipped to the bulk of the '
                     f'values (all: {fmt(min(all_y))} .. {fmt(max(all_y))})</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def _legend(series: list[Series]) -> str:
    """A swatch per series with its last finite value."""
    out = []
    for s in series:
        last = next((y for y in reversed(s.ys) if finite(y)), float("nan"))
        out.append(f'<span class="key"><i style="background:{s.color}"></i>{escape(s.label)} '
                   f'<span class="last">{fmt(last)}</span></span>')
    return f'<span class="keys">{"".join(out)}</span>'


# -- which curves share a plot ---------------------------------------------------------------------

LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))"}  # how the papers write them


def groups(names: list[str]) -> list[tuple[str, list[str]]]:
    """Training scalars as (plot title, keys) in reading order: losses, D's outputs, D's accuracy,
    learning rates, speed, then every other scalar on a plot of its own (their scales differ)."""
    rules = [("losses", lambda k: k.startswith("loss")),
             ("D(x) and D(G(z))", lambda k: k in ("d_real", "d_fake")),
             ("D accuracy", lambda k: k == "acc" or k.startswith("acc_")),
             ("learning rate", lambda k: k.startswith("lr_") or k == "lr"),
             ("speed (steps/s)", lambda k: k == "steps_per_s")]
    out, taken = [], set()
    for title, rule in rules:
        ks = [k for k in names if rule(k)]
        if ks:
            out.append((title, ks))
            taken.update(ks)
    out += [(k, [k]) for k in names if k not in taken]
    return out


def eval_groups(names: list[str]) -> list[tuple[str, list[str]]]:
    """Evaluation metrics as (plot title, keys): one plot per metric, its variants together
    ("box:0.5/psnr", "stroke/psnr" and the mean "psnr" on the "psnr" plot)."""
    out: dict[str, list[str]] = {}
    for k in names:
        out.setdefault(k.rsplit("/", 1)[-1], []).append(k)
    return list(out.items())
