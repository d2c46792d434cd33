"""The frame-interpolation task on tiny videos: it trains, the graph-shaped step equals the eager
one, resume is exact, evaluation has its two baselines, and `gankit interpolate` doubles a
frame rate or fills damaged frames, refusing bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.media.video import VideoWriter, probe_video, read_frames
from gankit.metrics.frames import flow_warp, halfway_warps
from gankit.tasks.interpolate.evaluation import held_out, predict_all
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "interpolate.grid_examples=2"]


def _clip(path, n=14, side=16, fps=24):
    """A square moving right by one pixel per frame."""
    with VideoWriter(path, fps) as w:
        for i in range(n):
            f = np.zeros((side, side, 3), np.uint8)
            f[4:10, i % (side - 6):i % (side - 6) + 6] = 255
            w.write(f)
    return path


def _cfg(src, *extra):
    return load_config("frame-interp", overrides=[*TINY, f"data.source={src}", *extra])


@pytest.mark.parametrize("flow", [True, False])
def test_graph_shaped_step_equals_eager_and_trains(flow, tmp_path):
    src = _clip(tmp_path / "a.mp4")
    data_task = gankit.tasks.get_task("interpolate")
    runs = []
    for mode in ("eager", "static"):
        cfg = _cfg(src, f"interpolate.flow={str(flow).lower()}")
        e = Engine.build(cfg, data_task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = [p.detach().clone() for m in e.st.nets.values() for p in m.parameters()]
        for t in range(3):
            e.step(t)
        w = [p.detach() for m in e.st.nets.values() for p in m.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(w0, w))
        runs.append((torch.cat([x.flatten() for x in w]), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_flow_guidance_starts_at_the_flow_warp_and_is_cached(tmp_cache, tmp_path):
    """With interpolate.flow, G sees the halfway warps (made once, then read from the cache) and
    its untrained prediction is their mean: the run starts from the classical flow warp."""
    src = _clip(tmp_path / "a.mp4", n=20)
    task = gankit.tasks.get_task("interpolate")
    cfg = _cfg(src, "interpolate.flow=true")
    first = task.load_data(cfg, torch.device("cpu"))
    assert "computed and cached" in first.notes[-1] and len(list(tmp_cache.glob("warps-*.npz"))) == 1
    again = task.load_data(cfg, torch.device("cpu"))
    assert "read from the cache" in again.notes[-1]
    assert torch.equal(first.warp_prev, again.warp_prev) and torch.equal(first.warp_next, again.warp_next)
    want_p, want_n = halfway_warps(first.prev, first.next)
    assert first.warp_prev.dtype == torch.float16  # kept finer than uint8: 1/8 of a level or better
    assert torch.equal(first.warp_prev, want_p.half()) and torch.equal(first.warp_next, want_n.half())

    G = task.build(cfg, first, torch.device("cpu")).nets["G"]  # untrained
    assert G.down[0][0].in_channels == 4 * 3  # prev, next and their two warps
    test = held_out(cfg)
    got = predict_all(G, test.prev, test.next, cfg.interpolate)
    assert (got.int() - flow_warp(test.prev, test.next).int()).abs().max() <= 1  # float32 vs float64 rounding
    unguided = _cfg(src, "interpolate.flow=false")
    data = task.load_data(unguided, torch.device("cpu"))
    assert data.warp_prev is None
    assert task.build(unguided, data, torch.device("cpu")).nets["G"].down[0][0].in_channels == 2 * 3


def test_flow_guided_prediction_fuses_the_warps_by_gs_mask():
    """pred = M w_prev + (1 - M) w_next + r, M = (1 + m) / 2 from G's last channel."""
    from gankit.tasks.interpolate.phases import predict

    prev, next_ = torch.full((1, 3, 4, 4), -0.5), torch.full((1, 3, 4, 4), 0.5)
    wp, wn = torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), -0.6)
    seen = []

    def G(m, r):
        def f(x):
            seen.append(x.shape[1])
            return torch.cat([torch.full((1, 3, 4, 4), r), torch.full((1, 1, 4, 4), m)], 1)
        return f

    assert torch.allclose(predict(G(1.0, 0.0), prev, next_, True, (wp, wn)), wp)  # trusts prev's warp
    assert torch.allclose(predict(G(-1.0, 0.0), prev, next_, True, (wp, wn)), wn)
    assert torch.allclose(predict(G(0.0, 0.1), prev, next_, True, (wp, wn)), 0.5 * (wp + wn) + 0.1)
    assert seen == [12, 12, 12]  # prev, next and both warps
    unguided = predict(lambda x: torch.zeros(1, 3, 4, 4), prev, next_, True)
    assert torch.allclose(unguided, torch.zeros(1, 3, 4, 4))  # the neighbours' mean


def test_resume_is_exact(tmp_path):
    src = _clip(tmp_path / "a.mp4")
    whole = gankit.train(_cfg(src, "train.steps=4"), str(tmp_path / "whole"))
    gankit.train(_cfg(src, "train.steps=2"), str(tmp_path / "part"))
    resumed = gankit.train(_cfg(src, "train.steps=4"), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_cli_doubles_the_frame_rate_and_fills_frames(tmp_path, capsys, soundtracks):
    src = _clip(tmp_path / "a.mp4")
    run = tmp_path / "run"
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["train", "--preset", "frame-interp", "--data", str(src), "--steps", "2", "--out", str(run), *sets]) == 0
    assert "gankit interpolate" in capsys.readouterr().out
    # the same frames with a sound track: both modes keep the duration, so the audio is copied as it is
    talk = soundtracks.write(tmp_path / "talk.mp4", [f for f in read_frames(src)], 24)
    assert main(["interpolate", str(run), str(talk), "--out", str(tmp_path / "x2.mp4"), "--factor", "2"]) == 0
    info = probe_video(tmp_path / "x2.mp4")
    assert info.n_frames == 2 * 14 - 1 and float(info.fps) == 48
    soundtracks.assert_kept(talk, tmp_path / "x2.mp4")
    assert main(["interpolate", str(run), str(src), "--out", str(tmp_path / "x4.mp4"), "--factor", "4"]) == 0
    assert probe_video(tmp_path / "x4.mp4").n_frames == 4 * 13 + 1
    assert not soundtracks.has_audio(tmp_path / "x4.mp4")  # a mute input: a mute output, without a word
    assert main(["interpolate", str(run), str(talk), "--out", str(tmp_path / "f.mp4"), "--fill", "--frames", "3,4,9"]) == 0
    info = probe_video(tmp_path / "f.mp4")
    assert info.n_frames == 14 and float(info.fps) == 24
    soundtracks.assert_kept(talk, tmp_path / "f.mp4")
    assert "audio" not in capsys.readouterr().err


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    src = _clip(tmp_path / "a.mp4")
    run = gankit.train(_cfg(src, "train.steps=1"), str(tmp_path / "run"))
    (tmp_path / "bad.mp4").write_bytes(b"\x01" * 500)
    capsys.readouterr()
    cases = [
        (["--factor", "3"], "choose one of: 2, 4, 8"),
        (["--fill", "--frames", "3,99"], "99: outside the video's frames 0..13"),
        (["--fill", "--frames", "0"], "only one neighbour"),
        (["--fill"], "--fill and --frames go together"),
        (["--fill", "--frames", "a,b"], "expected frame numbers"),
        ([], "give either --factor"),
    ]
    for extra, msg in cases:
        assert main(["interpolate", str(run.dir), str(src), "--out", str(tmp_path / "o.mp4"), *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (extra, err)
    assert main(["interpolate", str(run.dir), str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "o.mp4"),
                 "--factor", "2"]) == 2
    assert "bad.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_evaluation_has_both_baselines(tmp_path):
    src = _clip(tmp_path / "a.mp4", n=30)
    run = gankit.train(_cfg(src, "train.steps=2"), str(tmp_path / "r"))
    from gankit.api import evaluate

    r = evaluate(str(run.dir), [], n=100)
    assert set(r) == {"gankit", "blend", "flow warp", "protocol"}
    assert all({"psnr", "ssim"} <= set(r[k]) for k in ("gankit", "blend", "flow warp"))
    assert main(["eval", str(run.dir), "--n", "10"]) == 0  # the CLI prints a scored task's table
    html = (run.dir / "report.html").read_text()  # written by training
    assert 'id="step-slider"' in html and "interpolate" in html and "last.pt" in html


@pytest.mark.parametrize("source", ["moving-mnist", "pans"])
def test_builtin_sources_train(source, tmp_path):
    run = gankit.train(_cfg(source, "train.steps=2"), str(tmp_path / source))
    assert run.step == 2 and (run.dir / "samples" / "step_000002.png").exists()
