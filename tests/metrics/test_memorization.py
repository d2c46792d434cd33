"""The memorisation check: a generator that copies its training faces is flagged; one that
draws new faces, noise or blurred averages is not."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.media.images import resize_uint8
from gankit.metrics.memorization import held_out_source, memorization, nearest, share_test, training_images


@pytest.fixture(scope="module")
def faces():
    return load_data("lfw", resolution=32).x, load_data("lfw:test", resolution=32).x  # (80, ...), (20, ...)


def _noised(x, std, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x.float() + std * torch.randn(x.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)


def _copies(train, n, std=6.0, seed=0):
    """A "generator" that returns its training images, slightly noised."""
    g = torch.Generator().manual_seed(seed)
    return _noised(train[torch.randint(len(train), (n,), generator=g)], std, seed)


def test_copies_are_flagged(faces):
    train, held = faces
    r = memorization(_copies(train, 300), train, held)
    s = r.scores["pixel"]
    assert r.copying and s["copying"] and s["share_below"] > 0.95 and s["nn_ratio"]["share_below"] > 0.95
    assert s["median_ratio"] < 0.3 and s["mann_whitney_z"] < -5
    assert "COPYING SUSPECTED" in r.verdicts[0]
    # each copy's nearest training image is the one it was made from
    g = torch.Generator().manual_seed(0)
    src = torch.randint(len(train), (300,), generator=g)
    assert r.distances["pixel"]["sample_idx"][:, 0].equal(src)


def test_copying_half_is_flagged_a_third_is_only_noted(faces):
    """With 20 held-out images the chance limit is ~35%: half copies are flagged; a third is
    reported as more than expected, without the flag."""
    train, held = faces
    g = torch.Generator().manual_seed(1)
    novel = _noised(held[torch.randint(len(held), (400,), generator=g)], 6.0, 1)
    r = memorization(torch.cat([_copies(train, 400), novel]), train, held)
    assert r.copying and 0.45 < r.scores["pixel"]["share_below"] < 0.55
    r = memorization(torch.cat([_copies(train, 200), novel]), train, held)
    assert not r.copying and 0.3 < r.scores["pixel"]["share_below"] < r.scores["pixel"]["chance_limit"]
    assert "more than the 5%" in r.verdicts[0]


def test_held_out_faces_are_not_flagged(faces):
    train, held = faces
    g = torch.Generator().manual_seed(2)
    r = memorization(_noised(held[torch.randint(len(held), (300,), generator=g)], 6.0, 2), train, held)
    s = r.scores["pixel"]
    assert not r.copying and not s["closer"] and s["share_below"] < 0.2
    assert 0.8 < s["median_ratio"] < 1.2
    assert r.verdicts[0].startswith("pixel: no sign of wholesale copying")


def test_noise_is_not_flagged_and_is_called_far(faces):
    train, held = faces
    noise = torch.randint(0, 256, (200, 1, 32, 32), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    r = memorization(noise, train, held)
    assert not r.copying and r.scores["pixel"]["share_below"] == 0.0 and r.scores["pixel"]["median_ratio"] > 1.5
    assert "do not look like the data" in r.verdicts[0]


def test_blurred_averages_are_close_but_not_copies(faces):
    """Pixel distance favours blur: the mean face is nearer the training set than any held-out
    face, but equally near many of them, and is not called a copy."""
    train, held = faces
    mean = train.float().mean(0, keepdim=True)
    blurry = _noised(mean.expand(100, -1, -1, -1), 1.0, 4)
    r = memorization(blurry, train, held)
    assert r.scores["pixel"]["closer"] and not r.copying
    assert "not copies" in r.verdicts[0]


def test_mirrored_copies_count_only_with_mirror(faces):
    train, held = faces
    flipped = _copies(train, 200).flip(-1)
    assert memorization(flipped, train, held, mirror=True).copying
    r = memorization(flipped, train, held, mirror=False)
    assert r.scores["pixel"]["share_below"] < 0.5  # a flipped face is not its own copy in pixels


def test_nearest_matches_brute_force():
    """Streamed over the training set in chunks, the two nearest found are the brute-force ones."""
    g = torch.Generator().manual_seed(5)
    q = torch.randint(0, 256, (70, 1, 3, 4), generator=g, dtype=torch.uint8)
    train = torch.randint(0, 256, (30, 1, 3, 4), generator=g, dtype=torch.uint8)
    flat = lambda x: x.reshape(len(x), -1).float()  # noqa: E731
    full = torch.cdist(flat(q).double(), flat(train).double())  # (70, 30)
    d, i = nearest(q, train, flat, chunk=7)
    want = full.topk(2, dim=1, largest=False)
    assert i.equal(want.indices)
    torch.testing.assert_close(d, want.values)
    # mirror: an image and its mirror are one training image; index i + 30 names the mirror
    d, i = nearest(q, train, flat, mirror=True, chunk=7)
    per_image = torch.minimum(full, torch.cdist(flat(q).double(), flat(train.flip(-1)).double()))
    torch.testing.assert_close(d, per_image.topk(2, dim=1, largest=False).values)
    assert ((i[:, 0] % 30) != (i[:, 1] % 30)).all() and (i >= 30).any()
    torch.testing.assert_close(d[:, 0], (flat(q).double() - flat(training_images(train, i[:, 0])).double()).norm(dim=1))


def test_large_images_are_compared_downscaled(faces):
    train, held = faces
    big = resize_uint8(train, 128)
    r = memorization(_copies(big, 40), big, resize_uint8(held, 128))
    assert r.copying and "at 64 px (downscaled from 128)" in r.protocol["distances"]["pixel"]


def test_exact_distance_for_a_copy():
    x = torch.full((1, 1, 4, 4), 100, dtype=torch.uint8)
    train = torch.cat([x, x + 51])  # RMS 51 / 255 = 0.2 apart
    held = torch.cat([x + 10, x + 20])
    r = memorization(torch.cat([x, x]), train, held)
    torch.testing.assert_close(r.distances["pixel"]["sample_d"][0], torch.tensor([0.0, 0.2], dtype=torch.float64))


def test_chance_limit():
    # j = 1 (the held-out minimum): the share below it is Beta(1, K), whose 99.9% point is 1 - 0.001^(1/K)
    h = np.arange(1, 21, dtype=float)
    t = share_test(np.array([0.5] * 30 + [30.0] * 70), h, 0.05)
    hi = 1 - 0.001 ** (1 / 20)
    assert t["threshold"] == 1.0 and t["share_below"] == 0.3
    assert math.isclose(t["chance_limit"], hi + 3 * math.sqrt(hi * (1 - hi) / 100))
    # more held-out images, a tighter limit
    assert share_test(np.ones(10_000), np.arange(2000.0), 0.05)["chance_limit"] < 0.1


def test_held_out_sources():
    assert held_out_source("lfw") == "lfw:test"
    assert held_out_source("mnist@100") == "mnist:test" and held_out_source("mnist") == "mnist:test"
    assert held_out_source("fake:1x8x8") is None and held_out_source("/data/faces") is None


def test_bad_input(faces):
    train, held = faces
    with pytest.raises(GankitError, match="one shape"):
        memorization(train[:4, :, :16, :16], train, held)
    with pytest.raises(GankitError, match="at least 2 samples and 2 held-out"):
        memorization(train[:4], train, held[:1])
    with pytest.raises(GankitError, match="uint8"):
        memorization(train[:4].float(), train, held)


def test_gankit_eval_memorization(tmp_path, capsys):
    """The command on a run (its data source and held-out split found from the run) and on a
    samples file of copies (--train), with the JSON, the pictures and the protocol."""
    run = tmp_path / "run"
    assert main(["train", "--preset", "stylegan2-lfw", "--steps", "2", "--out", str(run), "--no-progress",
                 "--device", "cpu", "--set", "model.g_width=4", "--set", "model.d_width=4", "--set", "model.z_dim=8",
                 "--set", "model.w_dim=8", "--set", "train.batch=8", "--set", "log.grid_n=4"]) == 0
    assert main(["eval", str(run), "--metrics", "memorization", "--n", "40", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "verdict:" in out and "held-out lfw:test (20)" in out
    r = json.loads((tmp_path / "r.json").read_text())["memorization"]
    assert set(r) >= {"pixel", "copying", "verdict", "protocol", "files"} and "features" not in r  # no face features
    p = r["protocol"]
    assert (p["train"], p["held_out"], p["n"], p["train_n"], p["held_out_n"], p["shape"]) == ("lfw", "lfw:test", 40, 80,
                                                                                              20, [1, 32, 32])
    assert p["step"] == 2 and p["run"] == str(run)
    assert r["files"]["nearest"] == str(run / "memorization" / "nearest.png")
    for f in r["files"].values():
        assert Path(f).stat().st_size > 1000

    copies = _copies(load_data("lfw", resolution=32).x, 64)
    np.savez(tmp_path / "copies.npz", x=copies.numpy())
    assert main(["eval", str(tmp_path / "copies.npz"), "--metrics", "memorization", "--train", "lfw",
                 "--out", str(tmp_path / "pics"), "--json", str(tmp_path / "c.json")]) == 0
    c = json.loads((tmp_path / "c.json").read_text())["memorization"]
    assert c["copying"] and (tmp_path / "pics" / "distances.png").exists()
    capsys.readouterr()

    # one line each: no training set for a file, no held-out split, held-out == train
    assert main(["eval", str(tmp_path / "copies.npz"), "--metrics", "memorization"]) == 2
    assert "--train SOURCE" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "copies.npz"), "--metrics", "memorization", "--train", "fake:1x32x32:50"]) == 2
    assert "--held-out SOURCE" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "copies.npz"), "--metrics", "memorization", "--train", "lfw",
                 "--held-out", "lfw"]) == 2
    assert "must not be the training images" in capsys.readouterr().err


def test_mnist_adds_feature_distance_beside_fid(tmp_path, capsys):
    """On MNIST the bundled feature network applies: a features block beside the pixel one; the
    distribution metrics still score in the same command."""
    train = load_data("mnist@100").x
    np.savez(tmp_path / "s.npz", x=_copies(train, 50).numpy())
    held = tmp_path / "held.npz"  # 500 test digits (the default, mnist:test, is all 10,000: slower)
    np.savez(held, x=load_data("mnist:test").x[:500].numpy())
    assert main(["eval", str(tmp_path / "s.npz"), "--metrics", "fid,memorization", "--train", "mnist@100",
                 "--held-out", str(held), "--out", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    m = r["memorization"]
    assert "fid" in r and r["protocol"]["ref"] == "mnist:test"
    assert m["protocol"]["held_out"] == str(held) and m["protocol"]["feature_net"] == "mnist-cnn"
    assert m["pixel"]["copying"] and m["features"]["copying"]
    out = capsys.readouterr().out
    assert "memorization features" in out and "50 samples vs mnist:test" in out
    assert main(["eval", str(tmp_path / "s.npz"), "--metrics", "memorisation"]) == 2
    assert "choose from: fid" in capsys.readouterr().err


def test_a_points_run_is_refused(tmp_path, capsys):
    run = tmp_path / "toy"
    assert main(["train", "--preset", "toy-mlp", "--steps", "2", "--out", str(run), "--no-progress", "--device", "cpu",
                 "--set", "train.batch=16"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "memorization", "--n", "50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compares images; this run makes 2-D points" in err[0]
