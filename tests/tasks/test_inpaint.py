"""The inpainting task and repair by inversion, at tiny sizes: training (the graph-shaped step equals
the eager one, resume is exact), the composite keeps known pixels bit-exactly, evaluation has the
four classical baselines, inversion lowers its context loss, and `gankit repair` round-trips
images and folders, refusing bad input in one line with no output left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.generate.invert import InvertSettings, importance_weights, invert
from gankit.tasks.inpaint.evaluation import complete, fixed_masks
from gankit.tasks.inpaint.infer import repair_images
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "inpaint.grid_examples=2"]
GEN = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch=8",
       "log.progress=false", "device=cpu", "log.grid_n=4"]


def _cfg(*extra):
    return load_config("inpaint", overrides=[*TINY, *extra])


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    return gankit.train(_cfg("train.steps=2"), str(tmp_path_factory.mktemp("inp") / "run"))


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory):
    cfg = load_config("dcgan", overrides=[*GEN, "train.steps=2"])
    return gankit.train(cfg, str(tmp_path_factory.mktemp("gen") / "run"))


def _png(path, a):
    Image.fromarray(a).save(path)
    return path


def test_graph_shaped_step_equals_eager_and_trains():
    task = gankit.tasks.get_task("inpaint")
    runs = []
    for mode in ("eager", "static"):
        cfg = _cfg()
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = [p.detach().clone() for m in e.st.nets.values() for p in m.parameters()]
        for t in range(3):
            e.step(t)
        w = [p.detach() for m in e.st.nets.values() for p in m.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(w0, w))
        runs.append((torch.cat([x.flatten() for x in w]), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_resume_is_exact(tmp_path):
    whole = gankit.train(_cfg("train.steps=4"), str(tmp_path / "whole"))
    gankit.train(_cfg("train.steps=2"), str(tmp_path / "part"))
    resumed = gankit.train(_cfg("train.steps=4"), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_the_composite_keeps_known_pixels_bit_exactly(inpaint_run):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 28, 28), generator=g, dtype=torch.uint8)
    masks = fixed_masks("box:0.25", 6, 28, 28)
    out = complete(inpaint_run.nets["G"], x, masks)
    assert out.dtype == torch.uint8 and torch.equal(out[~masks.expand_as(x)], x[~masks.expand_as(x)])
    assert not torch.equal(out, x)  # the hole was filled with G's guess, not left as it was
    out2, info = repair_images(inpaint_run, x, masks)
    assert torch.equal(out, out2) and info["method"] == "learned"


def test_evaluation_has_the_four_baselines(inpaint_run):
    from gankit.api import evaluate

    r = evaluate(str(inpaint_run.dir), [], n=40)
    assert set(r) == {"box:0.25", "box:0.5", "stroke", "protocol"}
    methods = {"gankit", "telea", "navier-stokes", "biharmonic", "mean fill"}
    assert methods <= set(r["box:0.5"])
    assert {"psnr", "ssim", "l1", "label_acc", "fid"} <= set(r["box:0.5"]["telea"])
    assert r["box:0.5"]["area"] == pytest.approx(0.5, abs=0.03) and r["protocol"]["n"] == 40
    html = (inpaint_run.dir / "report.html").read_text()  # written by training
    assert 'id="step-slider"' in html and "inpaint" in html and "last.pt" in html


def test_cli_eval_prints_every_method_per_hole_kind(inpaint_run, capsys):
    assert main(["eval", str(inpaint_run.dir), "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "box:0.5:" in out and "navier-stokes" in out and "label_acc" in out and "protocol:" in out


def test_inversion_lowers_the_context_loss_and_keeps_known_pixels(gen_run):
    x = gen_run.sample(3, seed=5)  # images the generator can make: a z exists that fits them
    masks = fixed_masks("box:0.25", 3, 28, 28)
    out, info = invert(gen_run, x, masks, InvertSettings(restarts=2, steps=30, lr=0.05, prior="norm"))
    assert all(e < s for s, e in zip(info["context_start"], info["context_end"]))
    known = ~masks.expand_as(x)
    assert torch.equal(out[known], x[known])


def test_importance_weights_favour_pixels_beside_the_hole():
    m = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    m[..., 8:12, 8:12] = True
    w = importance_weights(m)
    assert (w[m] == 0).all()  # missing pixels carry no context
    assert w[0, 0, 7, 10] > w[0, 0, 2, 10] > 0  # next to the hole > far from it > 0
    assert float(w[~m].mean()) == pytest.approx(1.0 + 0.1, rel=1e-4)  # normalised, plus the floor


def test_inversion_refuses_what_it_cannot_invert(inpaint_run, tmp_path):
    cond = gankit.train(load_config("cgan", overrides=[*GEN, "train.steps=1", "data.source=mnist"]), str(tmp_path / "c"))
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    m = fixed_masks("box:0.25", 1, 28, 28)
    with pytest.raises(GankitError, match="conditional"):
        invert(cond, x, m)
    with pytest.raises(GankitError, match="needs a 'generate' run"):
        invert(inpaint_run, x, m)


def test_cli_repairs_an_image_a_box_and_a_folder(inpaint_run, gen_run, tmp_path, capsys):
    g = np.random.default_rng(0)
    img = _png(tmp_path / "digit.png", g.integers(0, 256, (28, 28), dtype=np.uint8))
    hole = np.zeros((28, 28), np.uint8)
    hole[8:20, 8:20] = 255
    mask = _png(tmp_path / "hole.png", hole)
    run = str(inpaint_run.dir)
    assert main(["repair", run, str(img), "--mask", str(mask), "--out", str(tmp_path / "fixed.png"), "--show"]) == 0
    assert "(learned)" in capsys.readouterr().out
    fixed, orig = np.asarray(Image.open(tmp_path / "fixed.png")), np.asarray(Image.open(img))
    assert np.array_equal(fixed[hole == 0], orig[hole == 0])
    assert Image.open(tmp_path / "fixed_show.png").size[0] > 3 * 28  # damaged | repaired | mask
    assert main(["repair", run, str(img), "--box", "2,3,10,6", "--out", str(tmp_path / "boxed.png")]) == 0
    boxed = np.asarray(Image.open(tmp_path / "boxed.png"))
    keep = np.ones((28, 28), bool)
    keep[3:9, 2:12] = False
    assert np.array_equal(boxed[keep], orig[keep])
    (tmp_path / "imgs").mkdir(), (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        _png(tmp_path / "imgs" / f"{name}.png", g.integers(0, 256, (28, 28), dtype=np.uint8))
        _png(tmp_path / "masks" / f"{name}.png", hole)
    assert main(["repair", run, str(tmp_path / "imgs"), "--mask", str(tmp_path / "masks"),
                 "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert main(["repair", str(gen_run.dir), str(img), "--mask", str(mask), "--out", str(tmp_path / "inv.png"),
                 "--restarts", "2", "--steps", "3", "--prior", "d"]) == 0
    assert "(invert)" in capsys.readouterr().out
    inv = np.asarray(Image.open(tmp_path / "inv.png"))
    assert np.array_equal(inv[hole == 0], orig[hole == 0])


def test_api_returns_the_repaired_tensor_and_the_mask(inpaint_run, tmp_path):
    from gankit.api import repair_file

    img = _png(tmp_path / "d.png", np.full((28, 28), 90, np.uint8))
    soft = np.zeros((28, 28), np.uint8)
    soft[5:15, 5:15] = 200  # not binary: thresholded at 0.5, with a note
    notes = []
    from gankit.tasks.inpaint.infer import repair_file as rf

    y, m, info = rf(inpaint_run, img, _png(tmp_path / "m.png", soft), log=notes.append)
    assert y.shape == (1, 28, 28) and y.dtype == torch.uint8 and m.shape == (1, 28, 28)
    assert int(m.sum()) == 100 and any("not binary" in n for n in notes)
    assert (y[~m] == 90).all()
    y2, m2, _ = repair_file(str(inpaint_run.dir), img, box=(5, 5, 10, 10))
    assert torch.equal(m, m2) and torch.equal(y, y2)


def test_a_folder_of_grey_scans_trains_a_one_channel_inpainter(tmp_path):
    g = np.random.default_rng(1)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True)
        for i in range(3):
            _png(tmp_path / "scans" / split / f"s{i}.png", g.integers(0, 256, (40, 48), dtype=np.uint8))
    cfg = _cfg(f"data.source={tmp_path / 'scans'}", "inpaint.patch=16", "train.steps=2", "eval.every=2", "eval.n=8")
    run = gankit.train(cfg, str(tmp_path / "run"))
    assert run.data_meta["shape"] == [1, 16, 16]
    rows = [json.loads(ln) for ln in (run.dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("eval")]
    assert evals and {"box:0.5/psnr", "stroke/l1", "psnr", "protocol"} <= set(evals[0])
    y, m, _ = __import__("gankit.tasks.inpaint.infer", fromlist=["x"]).repair_file(
        run, tmp_path / "scans" / "test" / "s0.png", box=(3, 3, 10, 10))
    assert y.shape == (1, 40, 48)  # fully convolutional: the whole scan, not a crop


def test_cli_refuses_bad_input_in_one_line(inpaint_run, gen_run, tmp_path, capsys):
    img = _png(tmp_path / "digit.png", np.full((28, 28), 90, np.uint8))
    half = np.zeros((14, 14), np.uint8)
    half[2:7, 2:7] = 255
    small = _png(tmp_path / "small.png", half)
    empty = _png(tmp_path / "empty.png", np.zeros((28, 28), np.uint8))
    full = _png(tmp_path / "full.png", np.full((28, 28), 255, np.uint8))
    hole = np.zeros((28, 28), np.uint8)
    hole[4:10, 4:10] = 255
    mask = _png(tmp_path / "hole.png", hole)
    out = tmp_path / "o.png"
    run, gen = str(inpaint_run.dir), str(gen_run.dir)
    cases = [
        ([run, str(img), "--mask", str(small)], "--resize-mask"),
        ([run, str(img), "--mask", str(empty)], "nothing to repair"),
        ([run, str(img), "--mask", str(full)], "no known pixels"),
        ([run, str(img), "--mask", str(mask), "--box", "1,1,2,2"], "not both"),
        ([run, str(img)], "--mask MASK"),
        ([run, str(img), "--box", "20,20,10,10"], "must lie inside"),
        ([run, str(img), "--box", "1,2,3"], "x,y,w,h"),
        ([run, str(img), "--mask", str(mask), "--method", "invert"], "needs a 'generate' run"),
        ([gen, str(img), "--mask", str(mask), "--method", "learned"], "needs a 'inpaint' run"),
        ([run, str(tmp_path / "nope.png"), "--mask", str(mask)], "no such file"),
        ([run, str(_png(tmp_path / "tiny.png", np.full((5, 7), 90, np.uint8))), "--box", "1,1,2,2"],
         "tiny.png: a side of 5 px cannot be reflection-padded"),  # too small for the U-Net
    ]
    for args, msg in cases:
        assert main(["repair", *args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (args, err)
        assert not out.exists()
    assert main(["repair", run, str(img), "--mask", str(small), "--resize-mask", "--out", str(out)]) == 0
    assert out.exists()
