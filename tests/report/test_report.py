"""gankit.report on run directories made by hand (every file optional, some damaged) and on one
real tiny training run: what the page embeds, states and refuses, and that it fetches nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gankit.errors import GankitError
from gankit.report import compare_reports, read_run, write_report

ROLLBACK = ("warning: step 300: 10 non-finite updates in a row; rolled back to step 250 (last.pt) "
            "with learning rates x0.5")
PROTOCOL = {"metric": "PSNR in the hole (peak 255)", "n": 500, "ref": "mnist test (held out)", "run": "r", "step": 0}


def _png(path: Path, seed: int, size: tuple[int, int] = (30, 20)) -> None:
    """A small image whose bytes differ by seed (so grids at different steps differ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(a).save(path)


def make_run(root: Path, name: str = "run", *, task: str = "inpaint", steps: int = 600, grids: int = 7,
             evals: bool = True, checkpoints: bool = True, rollback: bool = True, cut_last_line: bool = False,
             command: bool = True, gif: bool = True, data_png: bool = True, loss_shift: float = 0.0) -> Path:
    """A run directory as gankit.training writes one, without training: metrics every 25 steps
    (with a rollback from step 300 to 250 when `rollback`), an evaluation every 200 steps, grids,
    a train.log and a checkpoint folder with its manifest."""
    d = root / name
    d.mkdir(parents=True)
    cfg = {"preset": "inpaint-mnist", "task": task, "seed": 0, "device": "cpu",
           "data": {"source": "mnist", "resolution": None}, "model": {"arch": "unet"},
           "train": {"steps": steps, "batch": 16, "loss": "ns", "lr_g": 0.0002, "lr_d": 0.0002},
           "eval": {"every": 200 if evals else 0, "n": 500, "metrics": "psnr"}, "log": {"every": 25, "grid_every": 100}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = 1796131451.0
    rows = []
    logged = [s for s in range(25, 301, 25)] + ([s for s in range(275, steps + 1, 25)] if rollback else
                                                [s for s in range(325, steps + 1, 25)])
    for i, s in enumerate(logged):
        lr = 0.0001 if rollback and i >= 12 else 0.0002  # the rollback halves the learning rates
        rows.append({"step": s, "epoch": s / 100, "loss_d": 1.5 - s / 1000 + loss_shift, "loss_g": 40 / (1 + s / 50),
                     "adv_g": 0.4, "l1_hole": 0.6 - s / 2000, "d_real": 0.6, "d_fake": 0.4, "lr_g": lr,
                     "steps_per_s": 6.5, "time": t0 + s})
        if evals and s % 200 == 0:
            rows.append({"step": s, "eval": True, "box/psnr": 20 + s / 100, "free/psnr": 18 + s / 100,
                         "psnr": 19 + s / 100, "box/ssim": 0.5 + s / 10000, "protocol": {**PROTOCOL, "step": s}})
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if cut_last_line:
        text += '{"step": 625, "epoch": 6.25, "loss_d": 1.2'  # the trainer is writing this line right now
    (d / "metrics.jsonl").write_text(text)
    log = []
    if command:
        log.append("2026-12-01 13:24:04 command: gankit train --preset inpaint-mnist --out runs/x")
    log += ["2026-12-01 13:24:04 data: mnist: 60000 images of 1x28x28",
            "2026-12-01 13:24:04 step: eager (CUDA graphs need a CUDA device)"]
    if rollback:
        log.append(f"2026-12-01 13:29:00 {ROLLBACK}")
    (d / "train.log").write_text("\n".join(log) + "\n")
    for i in range(grids):
        _png(d / "samples" / f"step_{i * 100:06d}.png", seed=i)
    if data_png:
        _png(d / "data.png", seed=99)
    if gif:
        frames = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]
        frames[0].save(d / "progress.gif", save_all=True, append_images=frames[1:])
    if checkpoints:
        c = d / "checkpoints"
        c.mkdir()
        entries = []
        for f, s in (("step_00000500.pt", 500), ("last.pt", steps)):
            (c / f).write_bytes(b"x" * (100 + s))
            entries.append({"file": f, "step": s, "sha256": f"{s:04d}" + "ab" * 30, "size": 100 + s})
        (c / "best.pt").write_bytes(b"x" * 600)
        (c / "best.json").write_text(json.dumps({"metric": "psnr", "value": 26.0, "step": 400}))
        (c / "manifest.json").write_text(json.dumps({"checkpoints": entries}))
    return d


def _html(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _element(html: str, element_id: str) -> str:
    """The text from the element with `element_id` up to the end of its section (good enough to
    ask what a box says without an HTML parser)."""
    i = html.index(f'id="{element_id}"')
    return html[i:html.find("</section>", i)]


def test_report_of_a_full_run(tmp_path):
    run = make_run(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    html = _html(out)
    # 7 grids: 6 in the slider's JSON plus the last as the <img>'s own src, slider 0..6 on the last.
    frames = json.loads(re.search(r'<script type="application/json" id="frames">(.*?)</script>', html).group(1))
    assert [f["step"] for f in frames] == [0, 100, 200, 300, 400, 500, 600]
    assert all(f["src"].startswith("data:image/png;base64,") for f in frames[:-1]) and frames[-1]["src"] == ""
    assert len({f["src"] for f in frames[:-1]}) == 6
    assert re.search(r'id="step-slider" min="0" max="6" step="1" value="6"', html)
    assert re.search(r'<img[^>]*id="step-image"[^>]*src="data:image/png;base64,', html)
    assert "step 600 (7 of 7)" in _element(html, "step-label")
    # The rollback line heads the page, the evaluation is prominent (inpaint is a scored task).
    assert ROLLBACK in _element(html, "warnings")
    assert html.index('id="warnings"') < html.index('id="evaluation"') < html.index('id="curves"')
    assert 'id="evaluation" class="prominent"' in html
    table = _element(html, "metrics-table")
    assert "at step 600 (the latest of 3 evaluations)" in html
    heads = re.findall(r'<th class="num">(.*?)</th>', table)
    assert heads == ["psnr", "ssim"]  # a column per metric, a row per variant (box, free, all)
    assert re.findall(r'<td class="mono">(.*?)</td>', table) == ["box", "free", "all"]
    assert 'title="best 26 at step 600 (higher is better)">26<' in table and ">0.56<" in table
    assert ">25<" in table and table.count("—") == 2  # free/ssim and the mean ssim were not logged
    over = html[html.index("<h3>over training</h3>"):html.index('id="setup"')]  # variants share a plot
    assert re.findall(r"<figcaption><b>(.*?)</b>", over) == ["psnr", "ssim"]
    assert over.split("</figure>")[0].count('<path class="line"') == 3
    protocol = _element(html, "protocol")
    assert "PSNR in the hole (peak 255)" in protocol and "mnist test (held out)" in protocol
    assert '<pre class="cmd">gankit train --preset inpaint-mnist --out runs/x</pre>' in _element(html, "setup")
    assert "mnist: 60000 images of 1x28x28" in _element(html, "data")
    assert 'alt="training data"' in html and "data:image/gif;base64," in html
    ckpt = _element(html, "checkpoints")
    assert "step_00000500.pt" in ckpt and "last.pt" in ckpt and "best.pt" in ckpt and "0500abababab" in ckpt
    assert re.search(r"best\.pt</td>\s*<td[^>]*>best</td>\s*<td[^>]*>400<", ckpt), ckpt  # its step, from best.json
    assert 'id="missing"' not in html  # nothing is missing
    assert '<details id="config">' in html and "inpaint-mnist" in _element(html, "config")


def test_a_rollback_drops_the_rows_it_undid(tmp_path):
    run = read_run(make_run(tmp_path))
    steps = [r["step"] for r in run.train_rows]
    assert steps == list(range(25, 601, 25))  # one row per step, increasing: 275 and 300 as redone
    assert {r["step"]: r["lr_g"] for r in run.train_rows}[275] == 0.0001
    html = _html(write_report(run.path))
    titles = re.findall(r"<figcaption><b>(.*?)</b>", _element(html, "curves"))
    assert titles == ["losses", "D(x) and D(G(z))", "learning rate", "speed (steps/s)", "adv_g", "l1_hole"]


def test_missing_pieces_are_stated_not_raised(tmp_path):
    run = make_run(tmp_path, checkpoints=False, grids=0, gif=False, command=False, data_png=False, rollback=False)
    metrics = run / "metrics.jsonl"
    metrics.write_text("".join(ln + "\n" for ln in metrics.read_text().splitlines() if '"eval"' not in ln))
    html = _html(write_report(run))
    missing = _element(html, "missing")
    for what in ("no checkpoints yet", "no sample grids yet", "progress.gif", "no evaluation yet (eval.every = 200)"):
        assert what in missing, what
    assert "no checkpoints yet" in _element(html, "checkpoints")
    assert 'id="step-slider"' not in html and "no sample grids yet" in _element(html, "samples")
    assert "command: not recorded" in html
    assert "No warnings in train.log" in _element(html, "warnings")
    assert 'id="metrics-table"' not in html


def test_truncated_and_garbled_metrics_lines(tmp_path):
    run = make_run(tmp_path, cut_last_line=True)
    html = _html(write_report(run))
    assert "its last line is incomplete (being written) and was left out" in html
    assert "metrics.jsonl:" not in _element(html, "warnings")  # a line being written is no warning
    assert read_run(run).train_rows[-1]["step"] == 600
    lines = (run / "metrics.jsonl").read_text().split("\n")
    lines.insert(3, '{"step": 70, "loss')  # a line damaged in the middle of the file
    (run / "metrics.jsonl").write_text("\n".join(lines))
    assert "1 line(s) are not JSON rows with a step" in _element(_html(write_report(run)), "warnings")


def test_empty_metrics_and_garbled_config_still_render(tmp_path):
    d = tmp_path / "young"
    d.mkdir()
    (d / "config.yaml").write_text("task: [generate\npreset: {")  # cut short mid-write
    (d / "metrics.jsonl").write_text("")
    html = _html(write_report(d))
    missing = _element(html, "missing")
    assert "config.yaml could not be read" in missing and "no training rows yet" in missing
    assert "task: [generate" in _element(html, "config")  # the text as it is
    assert "no training rows yet" in _element(html, "curves")
    (d / "config.yaml").unlink()  # a metrics.jsonl alone is still a run
    assert "config.yaml (the resolved config) is absent" in _html(write_report(d))


def test_bad_paths_are_one_line_errors(tmp_path):
    with pytest.raises(GankitError, match=re.escape(str(tmp_path / "nope")) + " does not exist"):
        write_report(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(GankitError, match="file.txt is not a directory"):
        write_report(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match=r"empty is not a gankit run: expected config.yaml or metrics.jsonl"):
        write_report(tmp_path / "empty")
    with pytest.raises(GankitError, match="empty is not a gankit run"):
        compare_reports([make_run(tmp_path), tmp_path / "empty"], tmp_path / "c.html")
    with pytest.raises(GankitError, match="at least one run"):
        compare_reports([], tmp_path / "c.html")
    run = make_run(tmp_path, "r2")
    with pytest.raises(GankitError, match="is a directory; give the report a file name"):
        write_report(run, out=tmp_path)


def test_out_elsewhere_atomic_and_self_contained(tmp_path):
    run = make_run(tmp_path)
    out = write_report(run, out=tmp_path / "site" / "r.html")
    assert out.exists() and not (run / "report.html").exists()
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary file left behind
    for html in (_html(out), _html(compare_reports([run], tmp_path / "c.html"))):
        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
        assert "<link" not in html and "@import" not in html and "url(" not in html
        assert not re.search(r"<script[^>]+src=", html)


def test_text_from_the_run_is_escaped(tmp_path):
    run = make_run(tmp_path)
    with (run / "train.log").open("a") as f:
        f.write('2026-12-01 13:30:00 command: gankit train --set x="<script>alert(1)</script>"\n')
    html = _html(write_report(run))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_grids_are_capped_first_and_last_kept(tmp_path):
    run = make_run(tmp_path, grids=60, steps=5900)
    html = _html(write_report(run))
    frames = json.loads(re.search(r'id="frames">(.*?)</script>', html).group(1))
    assert len(frames) == 48 and frames[0]["step"] == 0 and frames[-1]["step"] == 5900
    assert 'max="47"' in html and "12 of 60 left out" in html


def test_audio_clips_are_inlined_newest_first_within_the_budget(tmp_path, monkeypatch):
    from gankit.report import page

    run = make_run(tmp_path)
    for step in (0, 100, 300, 500, 600):  # 200 and 400 wrote none
        (run / "samples" / f"step_{step:06d}.wav").write_bytes(b"RIFF" + bytes([step // 100]) * 996)
    monkeypatch.setattr(page, "MAX_AUDIO_BYTES", 3000)  # room for three of the five files
    html = _html(write_report(run))
    frames = {f["step"]: f for f in json.loads(re.search(r'id="frames">(.*?)</script>', html).group(1))}
    assert frames[600]["audio"] == "" and frames[500]["audio"].startswith("data:audio/wav;base64,")
    assert "audio" in frames[300] and frames[300]["audio"] != frames[500]["audio"]
    assert frames[100]["wav"] == "samples/step_000100.wav" and frames[0]["wav"] == "samples/step_000000.wav"
    assert "audio" not in frames[200] and "wav" not in frames[200]
    assert re.search(r'<audio id="step-audio" controls preload="none" src="data:audio/wav;base64,', html)

    (run / "samples" / "step_000600.wav").unlink()  # the newest grid has none: the player starts hidden
    html = _html(write_report(run))
    assert '<audio id="step-audio" controls preload="none" hidden>' in html
    assert "no clips were written at step 600" in html
    for wav in (run / "samples").glob("*.wav"):
        wav.unlink()
    assert "<audio" not in _html(write_report(run))  # an image run: no player


def test_long_runs_are_thinned_and_quick(tmp_path):
    run = make_run(tmp_path, grids=2)
    rows = [{"step": s, "loss_d": float(np.sin(s / 100)), "loss_g": 1.0, "time": 1e9 + s} for s in range(1, 6001)]
    rows[100]["loss_g"] = float("nan")  # a non-finite value leaves a gap, not a broken plot
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = time.perf_counter()
    html = _html(write_report(run))
    assert time.perf_counter() - t < 1.5  # in practice ~50 ms; generous for a loaded CI machine
    paths = re.findall(r'<path class="line" d="([^"]*)"', _element(html, "curves"))
    assert len(paths) == 2 and all(0 < d.count(" L") + d.count("M") <= 1001 for d in paths)
    assert paths[1].count("M") == 2  # loss_g: a line, the gap at the NaN, the line again


def test_protocol_change_and_checkpoint_troubles(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines = [ln.replace('"n": 500', '"n": 100') if '"step": 200, "eval"' in ln else ln for ln in lines]
    lines = [ln.replace('"psnr": 25.0', '"psnr": 1.0') if '"step": 600, "eval"' in ln else ln for ln in lines]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    c = run / "checkpoints"
    (c / "corrupt").mkdir()
    (c / "corrupt" / "step_00000300.pt").write_bytes(b"bad")
    (c / "step_00000500.pt").unlink()
    monkeypatch.setattr("gankit.report.page.MAX_GIF_BYTES", 10)
    html = _html(write_report(run))
    assert "the protocol changed at step(s) 400" in html
    assert '>1<div class="best-so-far">best 23 @ 400</div>' in _element(html, "metrics-table")
    ckpt = _element(html, "checkpoints")
    assert "corrupt/step_00000300.pt</td><td>damaged" in ckpt and "listed but missing" in ckpt
    assert "checkpoints/step_00000500.pt is listed in manifest.json but missing" in _element(html, "warnings")
    assert "too big to embed" in _element(html, "animation") and "data:image/gif" not in html


def test_compare_has_a_row_per_run(tmp_path):
    a = make_run(tmp_path / "bench", "run")
    b = make_run(tmp_path / "bench-long", "run", loss_shift=0.25)  # same folder name: told apart by parent
    c = make_run(tmp_path, "no-eval", evals=False, task="generate")
    out = compare_reports([a, b, c], tmp_path / "compare.html")
    html = _html(out)
    table = _element(html, "compare-table")
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert len(rows) == 4  # the header and one per run
    assert "bench/run" in rows[1] and "bench-long/run" in rows[2] and "no-eval" in rows[3]
    assert ">0.9<" in rows[1] and ">1.15<" in rows[2]  # the final loss_d of each
    assert '<th class="num">psnr</th>' in rows[0] and ">25<" in rows[1] and rows[3].count("—") == 4
    losses = html[html.index("<b>loss_d</b>"):].split("</figure>")[0]
    assert losses.count('<path class="line"') == 3  # every run's loss_d on one plot


def test_import_does_not_load_torch():
    code = "import sys, gankit.report\nassert 'torch' not in sys.modules and 'matplotlib' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_report_of_a_real_tiny_run(tmp_path):
    import gankit
    from gankit.config import load_config

    cfg = load_config("dcgan", overrides=["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4",
                                          "model.z_dim=8", "train.batch=8", "log.progress=false", "device=cpu",
                                          "log.grid_n=4", "train.steps=4", "log.grid_every=2", "log.every=2"])
    gankit.train(cfg, str(tmp_path / "run"))
    html = _html(write_report(tmp_path / "run", out=tmp_path / "r.html"))
    frames = json.loads(re.search(r'id="frames">(.*?)</script>', html).group(1))
    assert [f["step"] for f in frames] == [0, 2, 4] and "step 4 (3 of 3)" in html
    assert "<b>4</b> / 4 steps (100%)" in html
    assert "fake:1x28x28:64" in _element(html, "data") and 'alt="training data"' in _element(html, "data")
    assert "loss_d" in _element(html, "curves") and "last.pt" in _element(html, "checkpoints")
    assert "evaluation is off" in _element(html, "evaluation")
    # what the forwards ran in, and why (auto: 4 steps are too few to measure bf16), at a glance
    setup = _element(html, "setup")
    assert "<dt>precision</dt><dd>fp32 (auto: 4 steps are too few to repay measuring bf16" in setup


def test_plots_clip_an_early_spike_and_pick_round_ticks():
    from gankit.report.plots import Series, line_plot, nice_ticks

    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0] and nice_ticks(3, 4017, 6) == [1000, 2000, 3000, 4000]
    xs = [float(s) for s in range(200)]
    calm = [1.0 + 0.1 * np.sin(x) for x in xs]
    assert "y clipped" not in line_plot([Series("loss_g", xs, calm, "#000")], "losses")
    spiked = [68.0] + calm[1:]  # an untrained G's first loss
    svg = line_plot([Series("loss_g", xs, spiked, "#000")], "losses")
    assert "y clipped to the bulk of the values (all: 0.9 .. 68)" in svg
    assert "<b>losses</b>" in svg and "loss_g" in svg
