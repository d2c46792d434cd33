"""`gankit synth` on tiny runs: the class-folder layout `gankit train --data` reads back, the .npz
fields, synth.json, determinism, truncation, the confidence filter (checked image by image with the
classifier), the InfoGAN code map, and every bad input refused in one line with no output left."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data import load_data
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.featurenet import FeatureNet, save_featurenet

TINY = ["model.g_width=4", "model.d_width=4", "model.z_dim=8", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "train.batch=8", "log.progress=false", "log.grid_n=4", "log.every=2", "device=cpu", "train.steps=2"]
FAKE = "data.source=fake:1x28x28:64"


def _train(root, preset, *more):
    return gankit.train(load_config(preset, overrides=[*TINY, *more]), str(root / preset))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conditional run on a two-class folder (cat, dog), an InfoGAN run with 3 codes, an
    unconditional run, a toy points run and an inpaint run: 2 steps each. MLP generators: at init
    their samples vary (a DCGAN's are all but constant grey), which the classifiers below need."""
    root = tmp_path_factory.mktemp("synth")
    data = root / "pets"
    g = np.random.default_rng(0)
    for k, name in enumerate(("cat", "dog")):
        (data / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(g.integers(0, 128, (28, 28), dtype=np.uint8) + 127 * k).save(data / name / f"{i}.png")
    return {
        "cgan": _train(root, "cgan", f"data.source={data}", "model.arch=mlp"),
        "info": _train(root, "infogan", FAKE, "model.info_cat=3", "model.arch=mlp"),
        "uncond": _train(root, "seed-mlp", FAKE),
        "toy": gankit.train(load_config("toy-mlp", overrides=["train.steps=1", "log.progress=false", "device=cpu"]),
                            str(root / "toy")),
        "inpaint": _train(root, "inpaint", "inpaint.mask=box:0.25", "log.grid_every=1000", "inpaint.grid_examples=2"),
    }


def _brightness_net(path, x, classes=("dark", "bright"), cut=None):
    """A feature network file (what --classifier takes) set by hand to classify by brightness: its
    one feature is the mean of the max-pooled image; class 1 above `cut` (default: the median over
    images `x`), class 0 below, confident a few standard deviations away."""
    net = FeatureNet(1, 2, 28, width=1, feat_dim=1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):  # channel 0 passes through unchanged, the others are 0
                m.weight.zero_()
                m.weight[0, 0, 1, 1] = 1.0
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_(), m.running_var.fill_(1.0 - m.eps), m.weight.fill_(1.0), m.bias.zero_()
        net.body[1].bias[0] = 1.0  # [-1, 1] -> [0, 2]: nothing lost to the ReLUs
        net.feat[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0]]))
        net.feat[0].bias.zero_()
        s = _feature(net, x)
        cut = float(s.median()) if cut is None else cut
        a = 3 / float(s.std())
        net.head.weight.copy_(torch.tensor([[-a], [a]]))
        net.head.bias.copy_(torch.tensor([a * cut, -a * cut]))
    save_featurenet(net, path, {"classes": list(classes)})
    return path


def _feature(net, x):
    with torch.no_grad():
        return net.eval().features(x.float() / 127.5 - 1)[:, 0]


@pytest.fixture(scope="module")
def brightness(runs, tmp_path_factory):
    """Per run, a 2-class classifier of its own samples: darker vs brighter than their median."""
    root = tmp_path_factory.mktemp("clf")
    return {name: _brightness_net(root / f"{name}.safetensors", runs[name].sample(512, seed=123))
            for name in ("cgan", "uncond")}


def _synth(capsys, *argv):
    rc = main(["synth", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _folder(d):
    """{class: uint8 (n, C, H, W)} read from a synth folder, files in name order."""
    out = {}
    for sub in sorted(p for p in d.iterdir() if p.is_dir()):
        out[sub.name] = torch.stack([torch.from_numpy(np.array(Image.open(f)))[None]
                                     for f in sorted(sub.glob("*.png"))])
    return out


def _confidence(clf, x):
    return Evaluator(clf).features(x).logits.softmax(1).max(1)


def test_conditional_folder_layout_reads_back(runs, tmp_path, capsys):
    out = tmp_path / "pets"
    rc, stdout, err = _synth(capsys, runs["cgan"].dir, "--per-class", 3, "--out", out)
    assert rc == 0, err
    assert f"wrote 6 images (2 classes x 3) to {out}/" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["cat", "dog", "synth.json"]
    imgs = _folder(out)
    assert {k: tuple(v.shape) for k, v in imgs.items()} == {"cat": (3, 1, 28, 28), "dog": (3, 1, 28, 28)}
    with Image.open(out / "cat" / "000000.png") as im:
        assert im.size == (28, 28) and im.mode == "L"
    back = load_data(str(out))  # what `gankit train --data DIR` reads
    assert back.classes == ["cat", "dog"] and len(back) == 6 and back.y.tolist() == [0, 0, 0, 1, 1, 1]
    rec = json.loads((out / "synth.json").read_text())
    assert rec["run"] == str(runs["cgan"].dir) and rec["run_step"] == 2 and rec["preset"] == "cgan"
    assert rec["seed"] == 0 and rec["per_class"] == 3 and rec["counts"] == {"cat": 3, "dog": 3}
    assert rec["classes"] == ["cat", "dog"] and rec["labels"].startswith("conditional")
    assert rec["truncation"] is None and rec["filter"] is None and rec["infogan_code_map"] is None
    assert rec["acceptance_rate"] == {"cat": 1.0, "dog": 1.0}
    assert rec["gankit_version"] == gankit.__version__
    assert rec["command"].startswith("gankit synth ") and "--per-class 3" in rec["command"]
    assert not (tmp_path / "pets.partial").exists()


def test_npz_fields_seed_batch_and_truncation(runs, tmp_path, capsys):
    run = runs["cgan"].dir

    def npz(name, *more):
        rc, _, err = _synth(capsys, run, "--per-class", 4, "--npz", tmp_path / name, *more)
        assert rc == 0, err
        with np.load(tmp_path / name) as z:
            return z["x"], z["y"], json.loads((tmp_path / name).with_suffix(".json").read_text())

    x, y, rec = npz("a.npz", "--seed", 5)
    assert x.dtype == np.uint8 and x.shape == (8, 1, 28, 28)
    assert y.dtype == np.int64 and y.tolist() == [0] * 4 + [1] * 4
    assert rec["format"] == "npz" and rec["seed"] == 5
    assert np.array_equal(x, npz("b.npz", "--seed", 5, "--batch", 3)[0])  # same seed, any batch: same images
    assert not np.array_equal(x, npz("c.npz", "--seed", 6)[0])
    xt, _, rec_t = npz("t.npz", "--seed", 5, "--truncate", 0.5)
    assert not np.array_equal(x, xt) and rec_t["truncation"]["psi"] == 0.5
    assert "psi * z" in rec_t["truncation"]["method"]
    # the folder holds the same images as the .npz for the same seed
    rc, _, err = _synth(capsys, run, "--per-class", 4, "--seed", 5, "--out", tmp_path / "f")
    imgs = _folder(tmp_path / "f")
    assert np.array_equal(np.concatenate([imgs["cat"].numpy(), imgs["dog"].numpy()]), x)
    assert load_data(str(tmp_path / "a.npz")).y.tolist() == y.tolist()  # and --data FILE.npz reads it


def test_filter_keeps_only_confident_samples_of_their_class(runs, brightness, tmp_path, capsys):
    clf, out = brightness["cgan"], tmp_path / "f"
    rc, _, err = _synth(capsys, runs["cgan"].dir, "--per-class", 3, "--filter", 0.6, "--classifier", clf,
                        "--out", out)
    assert rc == 0, err
    for k, (name, x) in enumerate(sorted(_folder(out).items(), key=lambda kv: ["cat", "dog"].index(kv[0]))):
        conf, pred = _confidence(clf, x)
        assert len(x) == 3 and (pred == k).all() and (conf >= 0.6).all(), name
    rec = json.loads((out / "synth.json").read_text())
    f = rec["filter"]
    assert f["threshold"] == 0.6 and f["classifier"]["name"] == "cgan" and len(f["classifier"]["sha256"]) == 64
    assert all(0 < r < 1 for r in rec["acceptance_rate"].values()) and rec["counts"] == {"cat": 3, "dog": 3}
    assert all(d > 3 for d in rec["drawn"].values())  # the filter did turn samples away


def test_unconditional_run_labelled_by_the_classifier(runs, brightness, tmp_path, capsys):
    clf, out = brightness["uncond"], tmp_path / "u"
    rc, _, err = _synth(capsys, runs["uncond"].dir, "--per-class", 4, "--filter", 0.7, "--classifier", clf,
                        "--out", out)
    assert rc == 0, err
    imgs = _folder(out)
    assert sorted(imgs) == ["bright", "dark"]  # the classifier's class names
    for k, name in enumerate(["dark", "bright"]):
        conf, pred = _confidence(clf, imgs[name])
        assert len(imgs[name]) == 4 and (pred == k).all() and (conf >= 0.7).all(), name
    rec = json.loads((out / "synth.json").read_text())
    assert rec["labels"].startswith("classifier") and rec["classes"] == ["dark", "bright"]


def test_filter_that_cannot_be_met_names_the_class(runs, tmp_path, capsys):
    # the bundled MNIST network is never 99.99% sure of one digit in a 2-step generator's output
    rc, _, err = _synth(capsys, runs["uncond"].dir, "--per-class", 2, "--filter", 0.9999, "--out", tmp_path / "x")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--filter 0.9999: class '" in err and "acceptance rate" in err and "after 1000 samples" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_infogan_codes_mapped_to_classes(runs, tmp_path, capsys):
    from gankit.tasks.generate.synth import MAP_SAMPLES, _Streams

    info = runs["info"]
    # a brightness cut between the darkest and the brightest code's median on the very samples
    # synth classifies to map the codes: those two codes map to different classes, the third to one of them
    streams = _Streams(info, 0)  # untruncated: run.generate applies truncation
    x = [info.generate(streams.take((2, c), MAP_SAMPLES, [c])) for c in range(3)]
    probe = _brightness_net(tmp_path / "probe.safetensors", torch.cat(x))
    net = Evaluator(probe).net
    med = sorted(float(_feature(net, xc).median()) for xc in x)
    clf = _brightness_net(tmp_path / "codes.safetensors", torch.cat(x), ["a", "b"], cut=(med[0] + med[2]) / 2)
    out = tmp_path / "i"
    rc, stdout, err = _synth(capsys, info.dir, "--per-class", 3, "--classifier", clf, "--out", out)
    assert rc == 0, err
    assert err.count("\n") == 1 and "all map to class '" in err  # one warning line: 3 codes, 2 classes
    rec = json.loads((out / "synth.json").read_text())
    m = rec["infogan_code_map"]
    assert sorted(v["class"] for v in m["codes"].values()) in (["a", "a", "b"], ["a", "b", "b"])
    assert len(m["shared_classes"]) == 1 and "majority" in m["method"] and rec["counts"] == {"a": 3, "b": 3}
    assert m["classifier"]["name"] == "codes" and rec["labels"].startswith("infogan")
    assert {k: len(v) for k, v in _folder(out).items()} == {"a": 3, "b": 3}


def _bad_cases(runs, tmp):
    cgan, uncond = runs["cgan"].dir, runs["uncond"].dir
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    return [
        ([uncond, "--per-class", 2], "per-class data needs a conditional run (cgan, acgan), an InfoGAN run"),
        ([cgan, "--per-class", 0], "--per-class 0: expected a number of images per class >= 1"),
        ([cgan, "--per-class", 2, "--truncate", 0], "0 < psi <= 1"),
        ([cgan, "--per-class", 2, "--truncate", 1.5], "0 < psi <= 1"),
        ([cgan, "--per-class", 2, "--filter", 0], "0 < T < 1"),
        ([cgan, "--per-class", 2, "--filter", 1], "0 < T < 1"),
        ([runs["inpaint"].dir, "--per-class", 2], "gankit synth needs a 'generate' run; this is a 'inpaint' run"),
        ([runs["toy"].dir, "--per-class", 2], "this run generates 2-D points"),
        ([runs["info"].dir, "--per-class", 2], "get no code, so per-class data cannot be drawn"),
        ([cgan, "--per-class", 2, "--filter", 0.5], "it has 10 classes, this run 2 (cat, dog)"),
        ([cgan, "--per-class", 2, "--classifier", "x.safetensors"], "--classifier is used by --filter"),
    ]


def test_bad_input_is_one_line_and_leaves_no_output(runs, tmp_path, capsys):
    for i, (argv, words) in enumerate(_bad_cases(runs, tmp_path)):
        out = tmp_path / f"o{i}"
        rc, _, err = _synth(capsys, *argv, "--out", out)
        assert rc == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("gankit: error: ") and words in err, (argv, err)
        assert not out.exists() and not (tmp_path / f"o{i}.partial").exists()
    for argv, words in [(["--out", tmp_path / "full"], "already exists"),
                        (["--npz", tmp_path / "x.txt"], "expected a path ending in .npz"),
                        ([], "give one")]:
        rc, _, err = _synth(capsys, runs["cgan"].dir, "--per-class", 2, *argv)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and words in err, (argv, err)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["keep.txt"]
    (tmp_path / "n.npz").write_bytes(b"old")
    rc, _, err = _synth(capsys, runs["cgan"].dir, "--per-class", 2, "--npz", tmp_path / "n.npz")
    assert rc == 2 and "already exists" in err and (tmp_path / "n.npz").read_bytes() == b"old"
    assert not (tmp_path / "n.json").exists()
    # --overwrite replaces a folder as a whole, and an .npz
    assert _synth(capsys, runs["cgan"].dir, "--per-class", 2, "--out", tmp_path / "full", "--overwrite")[0] == 0
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["cat", "dog", "synth.json"]
    assert _synth(capsys, runs["cgan"].dir, "--per-class", 2, "--npz", tmp_path / "n.npz", "--overwrite")[0] == 0
    assert np.load(tmp_path / "n.npz")["x"].shape == (4, 1, 28, 28)
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_an_output_under_a_file_is_one_line(runs, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where a folder is expected")
    for flag, out in (("--out", blocker / "x"), ("--npz", blocker / "x.npz")):
        rc, _, err = _synth(capsys, runs["cgan"].dir, "--per-class", 2, flag, out)
        assert rc == 2 and err == f"gankit: error: cannot write {out}: {blocker} is a file, not a folder\n", err
    assert sorted(tmp_path.iterdir()) == [blocker]


def test_api_matches_the_cli(runs, tmp_path):
    from gankit import api

    r = api.synth(runs["cgan"].dir, 2, npz=tmp_path / "a.npz", seed=3, truncate=0.8)
    assert r["kind"] == "npz" and r["n"] == 4 and r["counts"] == {"cat": 2, "dog": 2}
    rec = json.loads(open(r["json"]).read())
    assert rec["command"] is None and rec["truncation"]["psi"] == 0.8
