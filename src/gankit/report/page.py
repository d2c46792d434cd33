"""The report of one run as a single HTML string: header, what is missing, warnings, evaluation,
command and config, data, training curves, samples over training, animation, checkpoints and
train.log. Every piece of text from the run directory goes through `escape`.

Element ids the tests (and anyone scripting the page) rely on: #missing, #warnings,
#metrics-table, #memorization, #protocol, #step-slider, #step-image, #step-label, #step-audio and #step-audio-note
(an audio run's clips), #checkpoints, #config, #train-log.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path

from gankit.report.plots import COLORS, LABELS, Series, eval_groups, groups, line_plot
from gankit.report.read import RunData, keys, series
from gankit.report.style import better, data_uri, document, img_tag, json_script, num, size
from gankit.tasks import TASKS, task_part

MAX_GRIDS = 48  # sample grids embedded; a long run's grids are thinned to keep the file bounded
MAX_GIF_BYTES = 8 << 20  # progress.gif is inlined up to this size; a bigger data URI makes a slow page
MAX_AUDIO_BYTES = 4 << 20  # an audio run's grid clips inlined, newest first, up to this total
# What a task's surface.py may say about its report (`REPORT`), and what a task that says nothing
# gets: "scored" puts the evaluation first (a task scored against held-out targets: its numbers
# are its headline); "grid" is the caption of its sample grids.
REPORT_DEFAULTS = {"scored": False, "grid": "each grid: G's samples from the same fixed latents"}


def presentation(task: str) -> dict:
    """The run's task's REPORT settings over the defaults (an unknown task gets the defaults)."""
    surface = task_part(task, "surface") if task in TASKS else None
    return {**REPORT_DEFAULTS, **getattr(surface, "REPORT", {})}


def render(run: RunData) -> str:
    """The page for `run`."""
    scored = presentation(run.task)["scored"]
    evaluation = ("evaluation", "evaluation", _evaluation(run, prominent=scored))
    sections = [("setup", "command &amp; config", _command_config(run)), ("data", "data", _data(run)),
                ("curves", "training curves", _curves(run)), ("samples", "samples", _samples(run)),
                ("animation", "animation", _animation(run)), ("checkpoints", "checkpoints", _checkpoints(run)),
                ("log", "train.log", _log(run))]
    # A scored task's numbers are its headline; a generator's FID follows its curves.
    sections.insert(0 if scored else 3, evaluation)
    nav = '<a href="#warnings">warnings</a>' + "".join(f'<a href="#{a}">{t}</a>' for a, t, _ in sections)
    body = _missing(run) + _warnings(run) + "".join(html for _, _, html in sections)
    return document(f"{run.name}: gankit report", _header(run, nav), body)


def _header(run: RunData, nav: str) -> str:
    done, total = run.steps_done, run.total_steps
    if total:
        pct = min(100.0, 100.0 * done / total)
        steps = (f"<b>{done}</b> / {total} steps ({pct:.0f}%)"
                 f'<span class="bar"><i style="width:{pct:.1f}%"></i></span>')
    else:
        steps = f"<b>{done}</b> steps (total unknown)"
    items = [steps]
    started = next((ln.time for ln in run.log if ln.time), None)
    if started:
        items.append(f"started <b>{escape(started)}</b>")
    last_t = next((r["time"] for r in reversed(run.train_rows) if isinstance(r.get("time"), (int, float))), None)
    if last_t is not None:
        items.append(f"last logged <b>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last_t))}</b>")
    epoch = run.train_rows[-1].get("epoch") if run.train_rows else None
    if isinstance(epoch, (int, float)):
        items.append(f"epoch <b>{epoch:.4g}</b>")
    items.append(f'<span class="mono">{escape(str(run.path))}</span>')
    return (f'<h1>{escape(run.name)}<span class="task">{escape(run.task)}</span></h1>'
            f'<div class="meta"><span>preset <b>{escape(run.preset)}</b></span>'
            + "".join(f"<span>{i}</span>" for i in items) + f"</div><nav>{nav}</nav>")


def _missing(run: RunData) -> str:
    if not run.missing:
        return ""
    items = "".join(f"<li>{escape(m)}</li>" for m in run.missing)
    return (f'<section class="miss"><h2>Not in this run directory (yet)</h2>'
            f'<ul id="missing">{items}</ul></section>')


def _warnings(run: RunData) -> str:
    if not run.warnings:
        return '<section id="warnings" class="ok"><h2>No warnings in train.log</h2></section>'
    items = "".join(f'<li class="mono">{escape(w)}</li>' for w in run.warnings)
    return (f'<section id="warnings" class="warn"><h2>Warnings ({len(run.warnings)})</h2>'
            f"<ul>{items}</ul></section>")


def _command_config(run: RunData) -> str:
    if run.commands:
        cmds = "".join(f'<h3>{"started with" if i == 0 else "resumed with"}</h3><pre class="cmd">{escape(c)}</pre>'
                       for i, c in enumerate(run.commands))
    else:
        cmds = '<p class="muted">command: not recorded (train.log has no "command:" line)</p>'
    c = run.cfg
    every = c("eval", "every", default="?")
    glance = [("seed", c("seed")), ("device", c("device")), ("data", c("data", "source")),
              ("model", c("model", "arch")), ("loss", c("train", "loss")), ("batch", c("train", "batch")),
              ("lr G / D", f'{c("train", "lr_g", default="?")} / {c("train", "lr_d", default="?")}'),
              ("steps", c("train", "steps")),
              # what the forwards ran in and why (auto's timings), as the latest start or resume said
              ("precision", run.precision[-1] if run.precision else c("train", "precision")),
              ("eval", f'{c("eval", "metrics", default="?")} every {every} steps' if every else "off (eval.every = 0)")]
    rows = [f"<dt>{label}</dt><dd>{escape('?' if v is None else str(v))}</dd>" for label, v in glance]
    if run.config_error:
        cfg = f'<p class="muted">{escape(run.config_error)}; its text is below as it is.</p>'
    else:
        cfg = f'<dl class="kv">{"".join(rows)}</dl>' if run.config else ""
    if run.config_text is not None:
        n = run.config_text.count("\n")
        cfg += (f'<details id="config"><summary>config.yaml (the resolved config, {n} lines)</summary>'
                f"<pre>{escape(run.config_text)}</pre></details>")
    else:
        cfg += '<p class="muted">config.yaml is absent.</p>'
    return f'<section id="setup"><h2>Command and config</h2>{cmds}{cfg}</section>'


def _data(run: RunData) -> str:
    body = ""
    source = run.cfg("data", "source")
    if source is not None:
        body += f'<p>source <b class="mono">{escape(str(source))}</b></p>'
    if run.data_lines:
        body += "<ul>" + "".join(f"<li>{escape(d)}</li>" for d in run.data_lines) + "</ul>"
    else:
        body += '<p class="muted">train.log has no "data:" lines.</p>'
    if run.data_png:
        body += f'<h3>a few training examples (data.png)</h3>{img_tag(run.data_png, "training data", target=480)}'
    return f'<section id="data"><h2>Data</h2>{body}</section>'


def _curves(run: RunData) -> str:
    if not run.train_rows:
        return '<section id="curves"><h2>Training curves</h2><p class="muted">no training rows yet.</p></section>'
    plots = []
    for title, ks in groups(keys(run.train_rows)):
        lines = [Series(LABELS.get(k, k), *series(run.train_rows, k), COLORS[i % len(COLORS)])
                 for i, k in enumerate(ks)]
        plots.append(line_plot(lines, title))
    every = run.cfg("log", "every", default="?")
    note = f"{len(run.train_rows)} rows of metrics.jsonl, one every log.every = {every} steps"
    if run.last_line_cut:
        note += "; its last line is incomplete (being written) and was left out"
    return (f'<section id="curves"><h2>Training curves</h2><p class="note">{escape(note)}.</p>'
            f'<div class="plots">{"".join(plots)}</div></section>')


def _evaluation(run: RunData, prominent: bool) -> str:
    cls = ' class="prominent"' if prominent else ""
    head = f'<section id="evaluation"{cls}><h2>Evaluation</h2>'
    if not run.eval_rows:
        every = run.cfg("eval", "every")
        why = "evaluation is off (eval.every = 0)" if every == 0 else "no evaluation rows in metrics.jsonl yet"
        return head + f'<p class="muted">{escape(why)}.</p></section>'
    last = run.eval_rows[-1]
    names = keys(run.eval_rows)
    columns = eval_groups(names)
    # One row per variant ("box:0.5" of "box:0.5/psnr"; "" for a plain "psnr"), one column per metric.
    variants = list(dict.fromkeys(k.rsplit("/", 1)[0] if "/" in k else "" for k in names))
    variants = [v for v in variants if v] + [v for v in variants if not v]
    rows = []
    for v in variants:
        cells = [f'<td class="mono">{escape(v or ("all" if len(variants) > 1 else "value"))}</td>']
        for metric, _ in columns:
            cells.append(_cell(run, f"{v}/{metric}" if v else metric, last["step"]))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    extra = []
    for k, v in last.items():  # lists and text (a class histogram): shown, not plotted
        if k not in ("step", "eval", "protocol", "memorization") and isinstance(v, (list, str)):
            text = json.dumps(v) if isinstance(v, list) else v
            extra.append(f'<dt class="mono">{escape(k)}</dt><dd class="mono">'
                         f'{escape(text[:160] + ("…" if len(text) > 160 else ""))}</dd>')
    heads = "".join(f'<th class="num">{escape(m)}</th>' for m, _ in columns)
    table = (f'<h3>at step {last["step"]} (the latest of {len(run.eval_rows)} evaluations)</h3>'
             f'<div class="scroll"><table id="metrics-table"><tr><th></th>{heads}</tr>{"".join(rows)}</table></div>'
             '<p class="note">under a value: the best so far, where lower or higher is known to be better and '
             "an earlier evaluation beat this one.</p>" + (f'<dl class="kv">{"".join(extra)}</dl>' if extra else ""))
    plots = [line_plot([Series(k, *series(run.eval_rows, k), COLORS[i % len(COLORS)]) for i, k in enumerate(ks)],
                       title, markers=True) for title, ks in eval_groups(names)]
    return head + table + _memorization(last) + _protocol(run) + f'<h3>over training</h3><div class="plots">{"".join(plots)}</div></section>'


def _memorization(last: dict) -> str:
    """The memorisation check's verdict lines at the latest evaluation, in full (a copy of a
    training image is a privacy leak: the verdict must be read, not truncated), or why it did not run."""
    lines = [x for x in str(last.get("memorization", "")).split(" | ") if x]
    why = (last.get("protocol") or {}).get("memorization")
    if not lines:
        return f'<p class="note" id="memorization">memorisation check: {escape(why)}</p>' if isinstance(why, str) else ""
    head = "memorisation check: COPYING SUSPECTED" if last.get("mem_copying") else "memorisation check"
    items = "".join(f"<li>{escape(x)}</li>" for x in lines)
    return (f'<h3>{head}</h3><ul id="memorization">{items}</ul><p class="note">pictures: memorization/CLASS/nearest.png '
            "(samples beside their nearest training images) and distances.png in the run directory.</p>")


def _cell(run: RunData, key: str, step: int) -> str:
    """A metric's value at `step`, with its best so far when that was another evaluation."""
    xs, ys = series(run.eval_rows, key)
    now = next((y for x, y in zip(xs, ys) if x == step), None)
    if now is None:
        return '<td class="num muted">—</td>'
    way, title, best = better(key), "", ""
    if way:
        i = (min if way == "lower" else max)(range(len(ys)), key=ys.__getitem__)
        title = f' title="best {num(ys[i])} at step {xs[i]:g} ({way} is better)"'
        if xs[i] != step:
            best = f'<div class="best-so-far">best {num(ys[i])} @ {xs[i]:g}</div>'
    return f'<td class="num"{title}>{num(now)}{best}</td>'


def _protocol(run: RunData) -> str:
    """The latest evaluation's protocol, and a caution when earlier ones were made differently
    (another feature network, sample count or reference set: their numbers do not compare)."""
    proto = run.eval_rows[-1].get("protocol")
    if not isinstance(proto, dict):
        return '<p class="muted">the latest evaluation row records no protocol.</p>'
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(v if isinstance(v, str) else json.dumps(v))}</dd>"
                    for k, v in proto.items() if v is not None)
    out = f'<h3>protocol</h3><dl class="kv" id="protocol">{items}</dl>'

    def fixed(p: object) -> str:  # the parts that must not change between evaluations of one run
        return json.dumps({k: v for k, v in p.items() if k not in ("step", "run")}, sort_keys=True) \
            if isinstance(p, dict) else json.dumps(p)

    changed = [r["step"] for a, r in zip(run.eval_rows, run.eval_rows[1:])
               if fixed(a.get("protocol")) != fixed(r.get("protocol"))]
    if changed:
        out += (f'<p class="note">the protocol changed at step(s) {", ".join(map(str, changed))}: '
                "values before and after do not compare.</p>")
    return out


def _samples(run: RunData) -> str:
    head = '<section id="samples"><h2>Samples over training</h2>'
    if not run.samples:
        return head + '<p class="muted">no sample grids yet.</p></section>'
    n = len(run.samples)
    idx = sorted({round(i * (n - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)}) if n > MAX_GRIDS else range(n)
    shown = [run.samples[i] for i in idx]
    # Every frame but the last as a data URI in JSON; the last is the <img>'s own src.
    frames = [{"step": s, "src": data_uri(p.read_bytes(), p.suffix)} for s, p in shown[:-1]]
    frames.append({"step": shown[-1][0], "src": ""})
    player = _players(run, shown, frames)
    what = presentation(run.task)["grid"]
    note = f"{len(shown)} grids, {what}"
    if len(shown) < n:
        note += f"; {n - len(shown)} of {n} left out to keep this file small (evenly spaced, first and last kept)"
    last_step = shown[-1][0]
    return (head + f'<p class="note">{escape(note)}.</p><div class="slider">'
            f'<input type="range" id="step-slider" min="0" max="{len(shown) - 1}" step="1" value="{len(shown) - 1}" '
            f'aria-label="grid step"><button id="play" type="button">&#9654; play</button>'
            f'<span id="step-label">step {last_step} ({len(shown)} of {len(shown)})</span></div>'
            + img_tag(shown[-1][1], f"samples at step {last_step}", element_id="step-image")
            + player + json_script("frames", frames) + "</section>")


def _players(run: RunData, shown: list[tuple[int, Path]], frames: list[dict]) -> str:
    """An audio run's grids have their clips beside them (samples/step_N.wav): the newest are
    inlined up to MAX_AUDIO_BYTES in all, each frame's in `frames` (the last frame's as the
    <audio>'s own src); older ones are named instead. '' for a run without clips."""
    if not any(s in run.sample_audio for s, _ in shown):
        return ""
    budget, src = MAX_AUDIO_BYTES, ""
    for i in range(len(shown) - 1, -1, -1):
        wav = run.sample_audio.get(shown[i][0])
        if wav is None:
            continue
        size_ = wav.stat().st_size
        if size_ > budget:
            frames[i]["wav"] = str(wav.relative_to(run.path))
            continue
        budget -= size_
        uri = data_uri(wav.read_bytes(), ".wav")
        if i == len(shown) - 1:  # the last frame's clips are the <audio>'s own src, as its grid is the <img>'s
            frames[i]["audio"], src = "", f' src="{uri}"'
        else:
            frames[i]["audio"] = uri
    last = frames[-1]
    away = "" if src else (f'the clips of step {last["step"]} are not embedded (page size): {last["wav"]}'
                           if "wav" in last else f'no clips were written at step {last["step"]}')
    return (f'<p class="note">the grid\'s clips, one after another (0.25 s apart), in the order of its '
            f'spectrograms:</p><audio id="step-audio" controls preload="none"{src}{" hidden" if away else ""}>'
            f'</audio><p class="note" id="step-audio-note"{"" if away else " hidden"}>{escape(away)}</p>')


def _animation(run: RunData) -> str:
    head = '<section id="animation"><h2>Animation (progress.gif)</h2>'
    if run.gif is None:
        return head + '<p class="muted">progress.gif is not written yet (it is made when training ends).</p></section>'
    if run.gif_size > MAX_GIF_BYTES:
        return head + (f'<p class="muted">progress.gif is {size(run.gif_size)}, too big to embed here '
                       f"(limit {size(MAX_GIF_BYTES)}); open {escape(str(run.gif))}.</p></section>")
    return head + img_tag(run.gif, "samples over training, animated") + "</section>"


def _checkpoints(run: RunData) -> str:
    head = '<section id="checkpoints"><h2>Checkpoints</h2>'
    if not run.checkpoints:
        where = "checkpoints/ is empty" if (run.path / "checkpoints").is_dir() else "no checkpoints/ folder"
        return head + f'<p class="muted">no checkpoints yet ({where}).</p></section>'
    what = {"last": "last: the newest state, what resume and `gankit sample` load",
            "best": "best: a copy of the checkpoint with the best evaluation so far",
            "damaged": "damaged: failed verification, moved aside and never loaded",
            "listed but missing": "listed in manifest.json but not on disk"}
    rows = "".join(
        f'<tr><td class="mono">{escape(c.file)}</td><td>{escape(c.role)}</td>'
        f'<td class="num">{"?" if c.step is None else c.step}</td><td class="num">{size(c.size)}</td>'
        f'<td class="mono">{escape(c.sha256[:12]) if c.sha256 else "—"}</td></tr>' for c in run.checkpoints)
    roles = sorted({c.role for c in run.checkpoints if c.role in what}, key=list(what).index)
    legend = "".join(f"<li>{escape(what[r])}</li>" for r in roles)
    if not any(c.role == "best" for c in run.checkpoints):
        legend += "<li>no best.pt (kept only when evaluation runs during training)</li>"
    note = f'<p class="note">{escape(run.manifest_error)}.</p>' if run.manifest_error else ""
    return (head + '<div class="scroll"><table><tr><th>file</th><th>role</th><th class="num">step</th>'
            f'<th class="num">size</th><th>sha256 (manifest)</th></tr>{rows}</table></div>'
            f"<ul class=\"note\">{legend}</ul>{note}</section>")


def _log(run: RunData) -> str:
    head = '<section id="log"><h2>train.log</h2>'
    if not run.log:
        return head + '<p class="muted">train.log is absent or empty.</p></section>'
    lines = "\n".join(f'<span class="warn">{escape(f"{ln.time} {ln.text}".strip())}</span>' if ln.warning
                      else escape(f"{ln.time} {ln.text}".strip()) for ln in run.log)
    cut = f", the last {len(run.log)} shown" if run.log_total > len(run.log) else ""
    n_warn = sum(ln.warning for ln in run.log)
    return (head + f'<details id="train-log"><summary>{run.log_total} lines{cut}, {n_warn} flagged</summary>'
            f"<pre>{lines}</pre></details></section>")
