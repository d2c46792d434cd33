"""Offline evaluation with the bundled feature network: known answers on real data."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from gankit.cli import main
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.metrics.evaluate import Evaluator


@pytest.fixture(scope="module")
def ev():
    return Evaluator()


@pytest.fixture(scope="module")
def test_images():
    return load_data("mnist:test")


def _blur(x, k):
    if k == 1:
        return x
    return F.avg_pool2d(x.float(), k, stride=1, padding=k // 2, count_include_pad=False).round().to(torch.uint8)


def _noise(x, std):
    g = torch.Generator().manual_seed(0)
    return (x.float() + std * torch.randn(x.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)


def test_a_set_against_itself(ev, test_images):
    fs = ev.features(test_images.x[:2000])
    r = ev.score(fs, fs, ["fid", "pr", "dc"])
    assert abs(r["fid"]) < 1e-3
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0


def test_fid_rises_with_blur_and_noise(ev, test_images):
    real = ev.features(test_images.x[:3000])
    other = test_images.x[3000:6000]
    blur = [ev.score(ev.features(_blur(other, k)), real, ["fid"])["fid"] for k in (1, 3, 5)]
    noise = [ev.score(ev.features(_noise(other, s)), real, ["fid"])["fid"] for s in (0, 30, 60, 120)]
    assert blur == sorted(blur) and blur[0] < blur[-1] / 5, blur
    assert noise == sorted(noise) and noise[0] < noise[-1] / 5, noise


def test_one_class_set_class_kl(ev, test_images):
    ones = test_images.x[test_images.y == 1]
    real = ev.features(test_images.x)
    r = ev.score(ev.features(ones), real, ["classes"])
    p_real_1 = (real.logits.argmax(1) == 1).float().mean().item()
    assert r["class_kl"] == pytest.approx(-math.log(p_real_1), abs=0.02)  # KL(one-hot || p_real)
    assert r["class_kl"] == pytest.approx(math.log(10), abs=0.2)  # MNIST's classes are near uniform
    assert r["class_hist"][1] > 0.99


def test_fixed_seed_same_numbers(ev, test_images):
    fake, real = ev.features(test_images.x[:1500]), ev.features(test_images.x[1500:4000])
    a = ev.score(fake, real, ["fid", "kid", "is", "pr", "dc", "classes"], seed=3)
    b = ev.score(fake, real, ["fid", "kid", "is", "pr", "dc", "classes"], seed=3)
    assert a == b
    assert set(a["protocol"]) == {"feature_net", "feature_net_sha256", "resize", "n", "ref", "ref_n", "seed", "run", "step"}
    assert a["protocol"]["n"] == 1500 and a["protocol"]["ref_n"] == 2500


def test_a_small_fid_sample_is_warned_about_once(test_images, capsys):
    ev = Evaluator()
    fake, real = ev.features(test_images.x[:500]), ev.features(test_images.x[500:3000])
    ev.score(real, fake, ["fid"])  # 2,500 samples: no warning
    assert "biased" not in capsys.readouterr().err
    ev.score(fake, real, ["fid"])
    ev.score(fake, real, ["fid"])
    err = capsys.readouterr().err
    assert err.count("FID from 500 samples is biased upwards") == 1


def test_bad_metric_and_too_few(ev, test_images):
    with pytest.raises(GankitError, match="unknown metric 'fidd'"):
        ev.evaluate(test_images.x[:10], ["fidd"])
    fs = ev.features(test_images.x[:3])
    with pytest.raises(GankitError, match="need at least 4 samples"):
        ev.score(fs, fs, ["pr"])


def test_stacked_mnist_modes(ev):
    data = load_data("stacked-mnist:test")
    assert data.x.shape == (10000, 3, 28, 28) and len(data.classes) == 1000
    s = ev.stacked_modes(data.x[:3000])
    # 3,000 real stacked images: most of the 1,000 modes are hit; the classifier reads the labels
    assert s["modes"] > 900 and s["n"] == 3000
    digits_r = data.y[:3000] // 100
    assert s["modes"] <= 1000 and digits_r.unique().numel() == 10


def test_cli_eval_run_json_and_floor(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "mnist", "--steps", "20", "--out", str(run), "--no-progress",
                 "--set", "log.grid_every=100"]) == 0
    out = tmp_path / "r.json"
    assert main(["eval", str(run), "--n", "500", "--metrics", "fid,kid,is,pr,dc,classes,dacc",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert {"fid", "kid", "is", "precision", "recall", "density", "coverage", "class_hist", "class_kl",
            "d_acc", "protocol"} <= set(r)
    assert set(r["kid"]) == {"mean", "std"} and r["protocol"]["ref"] == "mnist:test"
    assert r["protocol"]["ref_n"] == 10000 and r["protocol"]["step"] == 20 and r["fid"] > 10
    printed = capsys.readouterr().out
    assert "fid" in printed and "protocol:" in printed
    assert main(["eval", "--floor", "--n", "2000", "--metrics", "fid,pr"]) == 0
    floor_out = capsys.readouterr().out
    assert "2000 samples vs mnist:test" in floor_out
    # Stacked MNIST modes of a 1-channel run: one line naming what it needs, exit 2
    assert main(["eval", str(run), "--n", "500", "--metrics", "stacked"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs 3-channel images, got 1" in err


def test_eval_every_keeps_best(tmp_path):
    import gankit

    cfg = gankit.load_config("seed-mlp", overrides=["train.steps=6", "eval.every=3", "eval.n=300",
                                                    "log.progress=false", "log.grid_every=100"])
    run = gankit.train(cfg, tmp_path / "e")
    rows = [r for r in gankit.viz.read_jsonl(run.dir / "metrics.jsonl") if r.get("eval")]
    assert [r["step"] for r in rows] == [3, 6] and all("fid" in r for r in rows)
    assert (run.dir / "metrics.png").exists() and (run.dir / "checkpoints" / "best.pt").exists()
    best = json.loads((run.dir / "checkpoints" / "best.json").read_text())  # for the report
    assert isinstance(best["step"], int) and "fid" in best
    from gankit.training.checkpoint import load_checkpoint

    best = load_checkpoint(run.dir / "checkpoints" / "best.pt")
    assert best["best"]["fid"] == min(r["fid"] for r in rows)


def test_features_train_on_own_data_then_eval_with_it(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("bright", 210)):
        for i in range(40):
            a = np.clip(rng.normal(level, 20, (16, 16)), 0, 255).astype(np.uint8)
            (tmp_path / "data" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(tmp_path / "data" / cls / f"{i}.png")
    net = tmp_path / "net.safetensors"
    assert main(["features", "train", "--data", str(tmp_path / "data"), "--test", str(tmp_path / "data"),
                 "--out", str(net), "--epochs", "4", "--batch", "16"]) == 0
    assert net.exists() and net.with_suffix(".json").exists()
    meta = json.loads(net.with_suffix(".json").read_text())
    assert meta["test_accuracy"] > 0.9 and meta["spec"]["resolution"] == 16
    np.savez(tmp_path / "s.npz", x=load_data(str(tmp_path / "data")).x[:30].numpy())
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "s.npz"), "--featurenet", str(net), "--ref", str(tmp_path / "data"),
                 "--metrics", "fid,classes", "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["protocol"]["feature_net"] == "net" and r["protocol"]["ref_n"] == 80
    assert main(["features", "train", "--data", "fake:1x8x8:10", "--out", str(tmp_path / "x.pt")]) == 2
    capsys.readouterr()
    assert main(["features", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "s.safetensors"),
                 "--epochs", "1", "--shift", "2"]) == 0  # augmented: recorded in the sidecar
    assert json.loads((tmp_path / "s.json").read_text())["shift"] == 2
    assert main(["features", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "t.safetensors"),
                 "--shift", "16"]) == 2
    assert "--shift 16: expected 0 (off) up to 15 pixels" in capsys.readouterr().err
