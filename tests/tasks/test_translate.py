"""The translation task end to end on tiny data: pix2pix and CycleGAN train, checkpoint, resume
exactly, refuse bad input in one line, and translate an image, a folder and a video."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data.pairs import load_pairs
from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu",
        "log.every=2", "log.grid_every=1000", "translate.grid_examples=4"]
CYC = ["translate.g_blocks=1", "translate.pool=3"]


def _paired_folder(root, n=12, size=16):
    """A/ and B/ of the same names: B is A's negative, so the mapping is learnable and checkable."""
    g = np.random.default_rng(0)
    for sub in ("A", "B"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        a = (g.random((size, size)) * 255).astype(np.uint8)
        Image.fromarray(a).save(root / "A" / f"{i:03d}.png")
        Image.fromarray(255 - a).save(root / "B" / f"{i:03d}.png")
    return root


def _unpaired_folder(root, n=10, size=16):
    g = np.random.default_rng(1)
    for sub, c in (("trainA", 1), ("trainB", 3)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            shape = (size, size) if c == 1 else (size, size, 3)
            Image.fromarray((g.random(shape) * 255).astype(np.uint8)).save(root / sub / f"{sub}{i}.png")
    return root


def _cfg(method, source, *extra):
    sets = TINY + [f"data.source={source}"] + (CYC if method == "cyclegan" else []) + list(extra)
    return load_config(method, overrides=sets)


def _weights(e):
    return torch.cat([t.detach().float().flatten() for m in e.st.nets.values() for t in m.state_dict().values()])


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_a_step_trains_every_network(method, tmp_path):
    src = _paired_folder(tmp_path / "p") if method == "pix2pix" else _unpaired_folder(tmp_path / "u")
    cfg = _cfg(method, src)
    data = load_pairs(str(src))
    e = Engine.build(cfg, data, torch.device("cpu"))
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in e.st.nets.items()}
    for t in range(2):
        e.step(t)
    for n, m in e.st.nets.items():  # every network was updated by its optimiser
        assert any(not torch.equal(a, b) for a, b in zip(before[n], m.parameters())), n
    assert torch.isfinite(e.st.acc).all() and float(e.st.acc[0]) != 0


def test_pix2pix_graph_shaped_step_equals_eager(tmp_path):
    src = _paired_folder(tmp_path / "p")
    runs = []
    for mode in ("eager", "static"):
        e = Engine.build(_cfg("pix2pix", src), load_pairs(str(src)), torch.device("cpu"), mode=mode)
        for t in range(3):
            e.step(t)
        runs.append((_weights(e), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_l1_only_ablation_differs_from_cgan(tmp_path):
    src = _paired_folder(tmp_path / "p")
    w = []
    for gan in (1.0, 0.0):
        e = Engine.build(_cfg("pix2pix", src, f"translate.gan={gan}"), load_pairs(str(src)), torch.device("cpu"))
        for t in range(2):
            e.step(t)
        w.append(torch.cat([p.detach().flatten() for p in e.st.nets["G"].parameters()]))
    assert not torch.equal(w[0], w[1])


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_resume_is_exact(method, tmp_path):
    """Stopped at step 3 and resumed to 6 equals 6 steps at once, image pools included."""
    src = _paired_folder(tmp_path / "p") if method == "pix2pix" else _unpaired_folder(tmp_path / "u")
    const = "train.lr_schedule=constant"  # CycleGAN's schedule is laid out over train.steps
    whole = gankit.train(_cfg(method, src, "train.steps=6", const), str(tmp_path / "whole"))
    gankit.train(_cfg(method, src, "train.steps=3", const), str(tmp_path / "part"))
    resumed = gankit.train(_cfg(method, src, "train.steps=6", const), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    assert a["task"] == b["task"] == "translate" and b["step"] == 6
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), (net, k)
    if method == "cyclegan":
        assert torch.equal(a["extra"]["pool_b"]["images"], b["extra"]["pool_b"]["images"])


def test_pix2pix_refuses_unpaired_data(tmp_path):
    src = _unpaired_folder(tmp_path / "u")
    with pytest.raises(GankitError, match="unpaired.*pix2pix needs paired data"):
        gankit.train(_cfg("pix2pix", src, "train.steps=1"), str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # a mistake leaves nothing behind


def test_translate_cli_image_folder_video(tmp_path, capsys, soundtracks):
    src = _paired_folder(tmp_path / "p")
    run = tmp_path / "run"
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["train", "--preset", "pix2pix", "--data", str(src), "--steps", "2", "--out", str(run), *sets]) == 0
    out = capsys.readouterr().out
    assert "gankit translate" in out and (run / "samples" / "step_000002.png").exists()
    # one image of the run's size: translated as is
    assert main(["translate", str(run), str(src / "A" / "000.png"), "--out", str(tmp_path / "o.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (16, 16)
    # an RGB image of another size: converted with one line, or refused with --strict
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "rgb.png")
    assert main(["translate", str(run), str(tmp_path / "rgb.png"), "--out", str(tmp_path / "o2.png")]) == 0
    assert "converted RGB to grey, resized 24x20 to 16x16" in capsys.readouterr().err
    assert main(["translate", str(run), str(tmp_path / "rgb.png"), "--out", str(tmp_path / "o3.png"), "--strict"]) == 2
    assert "--strict refuses" in capsys.readouterr().err and not (tmp_path / "o3.png").exists()
    # a folder: the same names
    assert main(["translate", str(run), str(src / "A"), "--out", str(tmp_path / "folder")]) == 0
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == sorted(p.name for p in (src / "A").iterdir())
    # a video round trip: frame count and rate kept, and its sound track, unchanged and without a word
    from gankit.media.video import probe_video

    frames = np.zeros((6, 16, 16, 3), np.uint8)
    for i in range(6):
        frames[i, :, i:i + 4] = 255
    soundtracks.write(tmp_path / "in.mp4", frames, 25)
    capsys.readouterr()
    assert main(["translate", str(run), str(tmp_path / "in.mp4"), "--out", str(tmp_path / "out.mp4")]) == 0
    info = probe_video(tmp_path / "out.mp4")
    assert info.n_frames == 6 and float(info.fps) == 25 and info.size == (16, 16)
    soundtracks.assert_kept(tmp_path / "in.mp4", tmp_path / "out.mp4")
    assert "audio" not in capsys.readouterr().err


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_cli_eval_prints_the_scores(method, tmp_path, capsys):
    src = "edges2mnist" if method == "pix2pix" else "mnist2mnistm"  # built-ins have held-out splits
    run = gankit.train(_cfg(method, src, "train.steps=1"), str(tmp_path / "run"))
    capsys.readouterr()
    assert main(["eval", str(run.dir), "--n", "8"]) == 0
    assert "protocol:" in capsys.readouterr().out


def test_translate_refuses_bad_input_in_one_line(tmp_path, capsys):
    src = _paired_folder(tmp_path / "p")
    run = gankit.train(_cfg("pix2pix", src, "train.steps=1"), str(tmp_path / "run"))
    gen = gankit.train(load_config("seed-mlp", overrides=["data.source=fake:1x8x8:16", "model.g_hidden=[4]",
                                                          "model.d_hidden=[4]", "train.batch=4", "train.steps=1",
                                                          "log.progress=false", "device=cpu"]), str(tmp_path / "g"))
    img = str(src / "A" / "000.png")
    capsys.readouterr()  # what training said
    cases = [
        ([str(gen.dir), img, "--out", str(tmp_path / "x.png")], "needs a 'translate' run"),
        ([str(run.dir), img, "--out", str(tmp_path / "x.png"), "--direction", "BtoA"], "trained AtoB only"),
        ([str(run.dir), str(tmp_path / "nope.png"), "--out", str(tmp_path / "x.png")], "no such file"),
        ([str(run.dir), img, "--out", str(tmp_path / "x.mp4")], "an image input is written to an image"),
    ]
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 10)
    cases.append(([str(run.dir), str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "y.mp4")], "bad.mp4"))
    for argv, msg in cases:
        assert main(["translate", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (argv, err)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.mp4").exists()
    with pytest.raises(SystemExit):  # argparse: an unknown --direction is refused with its choices
        main(["translate", str(run.dir), img, "--out", str(tmp_path / "z.png"), "--direction", "up"])


def test_cyclegan_translates_both_ways_and_exports(tmp_path):
    src = _unpaired_folder(tmp_path / "u")
    run = gankit.train(_cfg("cyclegan", src, "train.steps=2"), str(tmp_path / "run"))
    from gankit.export import export_generator
    from gankit.tasks.translate.infer import translate_images

    a = load_pairs(str(src)).a[:3]
    ab = translate_images(run, a, "AtoB")
    assert ab.shape == (3, 3, 16, 16) and ab.dtype == torch.uint8
    assert translate_images(run, ab, "BtoA").shape == (3, 1, 16, 16)
    weights, sidecar = export_generator(run.dir, tmp_path / "g.safetensors")
    assert json.loads(sidecar.read_text())["nets"] == ["G_ab", "G_ba"]
    again = gankit.load(str(weights))
    assert torch.equal(translate_images(again, a, "AtoB"), ab)


def test_builtin_sources_train_with_the_presets(tmp_path):
    """pix2pix on edges2mnist and CycleGAN on mnist2mnistm, a few steps each, as shipped."""
    for method, source in (("pix2pix", "edges2mnist"), ("cyclegan", "mnist2mnistm")):
        run = gankit.train(_cfg(method, source, "train.steps=2"), str(tmp_path / method))
        assert run.step == 2 and (run.dir / "samples" / "step_000002.png").exists()
        log = (run.dir / "train.log").read_text()
        assert f"data: {source}" in log


def test_in_training_evaluation_of_a_translation_run(tmp_path):
    """eval.every on edges2mnist: metric rows with their protocol, metrics.png, best.pt; a folder
    without a held-out split is refused before training starts."""
    run = gankit.train(_cfg("pix2pix", "edges2mnist", "train.steps=2", "eval.every=2", "eval.n=64"),
                       str(tmp_path / "e"))
    rows = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if r.get("eval")]
    assert len(ev) == 1 and {"l1", "psnr", "ssim", "label_acc", "fid"} <= set(ev[0])
    assert ev[0]["protocol"]["n"] == 64 and ev[0]["protocol"]["ref"] == "edges2mnist test split"
    assert (run.dir / "metrics.png").exists() and (run.dir / "checkpoints" / "best.pt").exists()
    html = (run.dir / "report.html").read_text()  # written by training: the scores and their protocol
    table = html.split('id="metrics-table"')[1].split("</table>")[0]
    assert "label_acc" in table and "psnr" in table and "edges2mnist test split" in html
    src = _paired_folder(tmp_path / "p")
    with pytest.raises(GankitError, match="eval.every needs a held-out split"):
        gankit.train(_cfg("pix2pix", src, "train.steps=2", "eval.every=2"), str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()


def test_data_parallel_translation_trains_and_resumes_on_one_process(tmp_path, capsys):
    """pix2pix under --nproc 2 (the flat gradient all-reduce: its D runs twice per backward,
    which DDP does not allow), then resumed by one process."""
    src = _paired_folder(tmp_path / "p", n=16)
    out = tmp_path / "r"
    sets = [a for s in TINY if not s.startswith("train.batch") for a in ("--set", s)]
    argv = ["train", "--preset", "pix2pix", "--data", str(src), "--set", "train.batch=8", *sets]
    assert main([*argv, "--steps", "4", "--nproc", "2", "--out", str(out)]) == 0
    assert "one flat all-reduce" in (out / "train.log").read_text()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
    assert main(["train", "--resume", str(out), "--steps", "6", "--no-progress"]) == 0
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 6
