"""The super-resolution task on tiny data: both phases train, the graph-shaped step equals the
eager one, resume is exact across the phase switch, evaluation has its baselines, and
`gankit superres` upscales an image, a folder and a video, tiled, refusing bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data.superres import load_sr
from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=4", "model.d_width=4", "superres.g_blocks=1", "train.batch=4", "log.progress=false",
        "device=cpu", "log.every=2", "log.grid_every=1000"]


def _cfg(preset="srgan", *extra):
    return load_config(preset, overrides=[*TINY, "data.source=mnist", "superres.patch=28", *extra])


def _engine(mode, *extra):
    cfg = _cfg("srgan", "superres.pretrain_steps=2", *extra)
    data = gankit.tasks.get_task("superres").load_data(cfg, torch.device("cpu"))
    return Engine.build(cfg, data, torch.device("cpu"), mode=mode)


def _weights(e):
    return torch.cat([t.detach().float().flatten() for m in e.st.nets.values() for t in m.state_dict().values()])


def test_l1_then_gan_phase_train_their_networks():
    e = _engine("eager")
    D0 = [p.detach().clone() for p in e.st.nets["D"].parameters()]
    for t in range(2):  # the L1 phase: D untouched
        e.step(t)
    assert all(torch.equal(a, b) for a, b in zip(D0, e.st.nets["D"].parameters()))
    for t in range(2, 4):  # the GAN phase: D trained, its scalars logged
        e.step(t)
    assert any(not torch.equal(a, b) for a, b in zip(D0, e.st.nets["D"].parameters()))
    sums = dict(zip(e.st.task.stat_names, e.st.acc.tolist()))
    assert sums["gan_steps"] == 2 and sums["loss_d"] != 0 and all(np.isfinite(list(sums.values())))


def test_graph_shaped_step_equals_eager_in_both_phases():
    runs = []
    for mode in ("eager", "static"):
        e = _engine(mode)
        for t in range(4):
            e.step(t)
        runs.append((_weights(e), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_resume_across_the_phase_switch_is_exact(tmp_path):
    sets = ["superres.pretrain_steps=3"]
    whole = gankit.train(_cfg("srgan", "train.steps=6", *sets), str(tmp_path / "whole"))
    gankit.train(_cfg("srgan", "train.steps=2", *sets), str(tmp_path / "part"))
    resumed = gankit.train(_cfg("srgan", "train.steps=6", *sets), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), (net, k)


def test_evaluation_has_bicubic_and_nearest_beside_it(tmp_path):
    run = gankit.train(_cfg("srresnet", "train.steps=2"), str(tmp_path / "r"))
    from gankit.api import evaluate

    r = evaluate(str(run.dir), [], n=64)
    assert set(r) == {"gankit", "bicubic", "nearest", "protocol"}
    assert r["bicubic"]["psnr_y"] > r["nearest"]["psnr_y"]  # on MNIST x4: a sanity check of the baselines
    assert {"psnr_y", "ssim_y", "label_acc", "fid"} <= set(r["gankit"]) and r["protocol"]["n"] == 64
    from gankit.cli import main

    assert main(["eval", str(run.dir), "--n", "16"]) == 0  # the CLI prints a scored task's table
    html = (run.dir / "report.html").read_text()  # written by training: input | output | target grids
    assert 'id="step-slider"' in html and "superres" in html and "last.pt" in html


def test_superres_cli_image_folder_video_tiled(tmp_path, capsys, soundtracks):
    run = tmp_path / "run"
    sets = [a for s in TINY + ["superres.patch=28"] for a in ("--set", s)]
    assert main(["train", "--preset", "srresnet", "--data", "mnist", "--steps", "2", "--out", str(run), *sets]) == 0
    assert "gankit superres" in capsys.readouterr().out
    g = np.random.default_rng(0)
    Image.fromarray((g.random((30, 22)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    assert main(["superres", str(run), str(tmp_path / "a.png"), "--out", str(tmp_path / "a4.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "a4.png")).shape == (120, 88)
    # tiles of 40 LR pixels with 20 of context give the untiled image: the net's receptive field
    # (about 9 LR pixels of radius at this size) fits in the half of the overlap that is not blended
    Image.fromarray((g.random((100, 90)) * 255).astype(np.uint8)).save(tmp_path / "big.png")
    for name, extra in (("whole.png", ["--tile", "512", "--overlap", "0"]), ("t.png", ["--tile", "40", "--overlap", "20"])):
        assert main(["superres", str(run), str(tmp_path / "big.png"), "--out", str(tmp_path / name), *extra]) == 0
    a, t = (np.asarray(Image.open(tmp_path / f), dtype=float) for f in ("whole.png", "t.png"))
    assert a.shape == (400, 360) and np.abs(a - t).max() <= 1  # uint8 rounding at most
    # colour input to a grey run: converted with one line
    Image.fromarray((g.random((10, 12, 3)) * 255).astype(np.uint8)).save(tmp_path / "c.png")
    capsys.readouterr()
    assert main(["superres", str(run), str(tmp_path / "c.png"), "--out", str(tmp_path / "c4.png")]) == 0
    assert "converted RGB to grey" in capsys.readouterr().err
    (tmp_path / "dir").mkdir()
    for i in range(3):
        Image.fromarray((g.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "dir" / f"{i}.png")
    assert main(["superres", str(run), str(tmp_path / "dir"), "--out", str(tmp_path / "dir4")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir4").iterdir()) == ["0.png", "1.png", "2.png"]
    from gankit.media.video import probe_video

    soundtracks.write(tmp_path / "v.mp4", (g.random((5, 16, 16, 3)) * 255).astype(np.uint8), 30)
    capsys.readouterr()
    assert main(["superres", str(run), str(tmp_path / "v.mp4"), "--out", str(tmp_path / "v4.mp4")]) == 0
    info = probe_video(tmp_path / "v4.mp4")
    assert info.n_frames == 5 and float(info.fps) == 30 and info.size == (64, 64)
    soundtracks.assert_kept(tmp_path / "v.mp4", tmp_path / "v4.mp4")
    assert "audio" not in capsys.readouterr().err


def test_superres_refuses_bad_input_in_one_line(tmp_path, capsys):
    run = gankit.train(_cfg("srresnet", "train.steps=1"), str(tmp_path / "run"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 300)
    gen = gankit.train(load_config("seed-mlp", overrides=["data.source=fake:1x8x8:16", "model.g_hidden=[4]",
                                                          "model.d_hidden=[4]", "train.batch=4", "train.steps=1",
                                                          "log.progress=false", "device=cpu"]), str(tmp_path / "g"))
    capsys.readouterr()
    cases = [
        ([str(run.dir), str(tmp_path / "a.png"), "--out", str(tmp_path / "x.png"), "--scale", "2"], "trained for x4 only"),
        ([str(gen.dir), str(tmp_path / "a.png"), "--out", str(tmp_path / "x.png")], "needs a 'superres' run"),
        ([str(run.dir), str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "y.mp4")], "bad.mp4"),
        ([str(run.dir), str(tmp_path / "rgb.png"), "--out", str(tmp_path / "x.png"), "--strict"], "--strict refuses"),
        ([str(run.dir), str(tmp_path / "a.png"), "--out", str(tmp_path / "x.png"), "--tile", "8", "--overlap", "5"],
         "tile >= 2 x overlap"),
    ]
    for argv, msg in cases:
        assert main(["superres", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (argv, err)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.mp4").exists()


def test_data_errors_are_one_line():
    with pytest.raises(GankitError, match="scale 3 does not divide"):
        load_sr("mnist", 3, 28)
    with pytest.raises(GankitError):
        gankit.train(_cfg("srresnet", "superres.patch=30", "train.steps=1"), "/tmp/never-written-sr")


@pytest.mark.slow
def test_the_card_calls_a_run_a_gan_only_after_its_adversarial_phase_began(tmp_path):
    from gankit.card import model_card

    l1 = gankit.train(_cfg("srresnet", "train.steps=1"), str(tmp_path / "l1"))
    card = model_card(gankit.api.load(l1.dir), l1.dir)
    assert "on its non-adversarial losses only (no adversarial step: its config has no adversarial phase)" in card
    assert "A GAN" not in card and "- gan\n" not in card.split("---")[1]
    gan = gankit.train(_cfg("srgan", "superres.pretrain_steps=1", "train.steps=2"), str(tmp_path / "gan"))
    card = model_card(gankit.api.load(gan.dir), gan.dir)
    assert "A GAN for the `superres` task" in card and "- gan\n" in card.split("---")[1]
