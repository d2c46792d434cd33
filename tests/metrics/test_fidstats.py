"""FID statistics files pytorch-fid and clean-fid read, and clean-fid's resize: checked against the
libraries' own code where it runs offline."""

import ast
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gankit.cli import main
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.metrics.evaluate import Evaluator, fid
from gankit.metrics.fidstats import (PROTOCOL_KEY, FidStats, StatsNetwork, feature_stats, frechet_distance,
                                     load_stats, save_stats)
from gankit.metrics.inception import _POOL3_LAYERS, inception_features
from gankit.metrics.resize import clean_resize

HAVE_PYTORCH_FID = importlib.util.find_spec("pytorch_fid") is not None
HAVE_CLEANFID = importlib.util.find_spec("cleanfid") is not None


def _pytorch_fid(*names: str) -> dict:
    """pytorch-fid's own functions, taken from its fid_score.py. Importing that module imports
    torchvision (its Inception subclasses torchvision's blocks at import time), which gankit never
    depends on, so the functions' source is compiled alone with the names they use."""
    import scipy.linalg

    src = Path(importlib.util.find_spec("pytorch_fid").submodule_search_locations[0]) / "fid_score.py"
    body = [n for n in ast.parse(src.read_text()).body if isinstance(n, ast.FunctionDef) and n.name in names]
    assert {n.name for n in body} == set(names), f"{src} no longer defines {names}"
    ns: dict = {"np": np, "linalg": scipy.linalg}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(src), "exec"), ns)
    return ns


def _gaussians(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + 1.0  # correlated, shifted
    return a, b


@pytest.mark.skipif(not HAVE_PYTORCH_FID, reason="pytorch-fid is not installed (pip install --no-deps pytorch-fid)")
@pytest.mark.parametrize("n", [400, 40])  # 40 < D: singular covariances, where pytorch-fid's sqrtm is fragile
def test_frechet_distance_matches_pytorch_fid(n):
    theirs = _pytorch_fid("calculate_frechet_distance")["calculate_frechet_distance"]
    a, b = _gaussians(n, 64)
    sa, sb = feature_stats(torch.from_numpy(a)), feature_stats(torch.from_numpy(b))
    with warnings.catch_warnings():  # scipy deprecates sqrtm's `disp`, which pytorch-fid passes
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = theirs(*sa, *sb)
    assert frechet_distance(*sa, *sb) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(*sa, *sa) == pytest.approx(0, abs=1e-8)


def test_statistics_fid_equals_the_feature_fid():
    """The FID against a statistics file is the FID gankit computes from the two feature sets."""
    a, b = _gaussians(300, 16, seed=1)
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    assert frechet_distance(*feature_stats(ta), *feature_stats(tb)) == pytest.approx(fid(ta, tb), rel=1e-5)


@pytest.mark.skipif(not HAVE_PYTORCH_FID, reason="pytorch-fid is not installed (pip install --no-deps pytorch-fid)")
def test_round_trip_and_pytorch_fid_reads_our_file(tmp_path):
    a, _ = _gaussians(200, 32)
    mu, sigma = feature_stats(torch.from_numpy(a))
    path = tmp_path / "s.npz"
    save_stats(path, mu, sigma, {"network": "x", "resize": "clean", "n": 200})
    s = load_stats(path)
    assert np.array_equal(s.mu, mu) and np.array_equal(s.sigma, sigma)
    assert s.protocol == {"network": "x", "resize": "clean", "n": 200}
    # pytorch-fid's reader on our file: only mu and sigma are taken, the record is ignored
    read = _pytorch_fid("compute_statistics_of_path")["compute_statistics_of_path"]
    m, c = read(str(path), None, 50, 32, "cpu")
    assert np.array_equal(m, mu) and np.array_equal(c, sigma)
    # clean-fid reads with a bare np.load(path) (features.py): no pickle needed for any key
    with np.load(path) as z:
        assert set(z.files) == {"mu", "sigma", PROTOCOL_KEY} and z[PROTOCOL_KEY].dtype.kind == "U"
    assert not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize("mu_dtype", [np.float32, np.float64])  # clean-fid writes float32 mu, pytorch-fid float64
def test_files_written_the_libraries_way_load(tmp_path, mu_dtype):
    a, _ = _gaussians(100, 8)
    mu, sigma = a.mean(0).astype(mu_dtype), np.cov(a, rowvar=False)
    np.savez_compressed(tmp_path / "lib.npz", mu=mu, sigma=sigma)  # what both libraries call
    s = load_stats(tmp_path / "lib.npz")
    assert s.protocol is None and s.mu.dtype == np.float64 and s.dims == 8
    assert np.array_equal(s.mu, mu.astype(np.float64)) and np.array_equal(s.sigma, sigma)


def _bad(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_bad_files_are_one_line_each(tmp_path):
    eye = np.eye(4)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    bad_sigma = eye.copy()
    bad_sigma[0, 1] = np.nan
    cases = [
        (tmp_path / "s.npy", "expected an .npz file"),
        (tmp_path / "missing.npz", "no such file"),
        (garbage, "not a readable .npz"),
        (_bad(tmp_path, "nomu.npz", sigma=eye), "no mu array .*holds sigma"),
        (_bad(tmp_path, "feats.npz", feats=eye), "no mu and no sigma"),
        (_bad(tmp_path, "shape.npz", mu=np.zeros(3), sigma=eye), r"mu has shape \(3,\) and sigma \(4, 4\)"),
        (_bad(tmp_path, "mu2d.npz", mu=eye, sigma=eye), r"expected mu \(D,\)"),
        (_bad(tmp_path, "nan.npz", mu=np.zeros(4), sigma=bad_sigma), "sigma holds 1 non-finite"),
        (_bad(tmp_path, "inf.npz", mu=np.array([0, np.inf, 0, 0]), sigma=eye), "mu holds 1 non-finite"),
        (_bad(tmp_path, "str.npz", mu=np.array(["a"] * 4), sigma=eye), "mu has dtype <U1"),
        (_bad(tmp_path, "obj.npz", mu=np.array([{}], dtype=object), sigma=eye), "not a readable .npz"),
        (_bad(tmp_path, "asym.npz", mu=np.zeros(2), sigma=np.array([[1.0, 0.5], [0.0, 1.0]])), "not symmetric"),
        (_bad(tmp_path, "rec.npz", mu=np.zeros(4), sigma=eye, **{PROTOCOL_KEY: np.array("{oops")}), "not a JSON object"),
    ]
    for path, msg in cases:
        with pytest.raises(GankitError, match=msg) as e:
            load_stats(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value), str(e.value)


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):  # the record cannot be written: nothing may stay behind
        save_stats(tmp_path / "s.npz", np.zeros(2), np.eye(2), {"bad": object()})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(GankitError, match="expected an .npz file"):
        save_stats(tmp_path / "s.txt", np.zeros(2), np.eye(2), {})


@pytest.mark.skipif(not HAVE_CLEANFID, reason="clean-fid is not installed (pip install --no-deps clean-fid)")
@pytest.mark.parametrize("size,shape", [(299, (33, 47)), (16, (40, 57)), (299, (299, 299))])
def test_clean_resize_equals_clean_fids(size, shape):
    from cleanfid.resize import make_resizer  # imports torch and PIL only: no torchvision needed

    theirs = make_resizer("PIL", False, "bicubic", (size, size))  # clean-fid's build_resizer("clean")
    x = torch.randint(0, 256, (2, 3, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    expected = np.stack([theirs(im.transpose(1, 2, 0)).transpose(2, 0, 1) for im in x.numpy()])  # HWC there
    ours = clean_resize(x, size)
    assert ours.dtype == torch.float32 and ours.shape == (2, 3, size, size)
    assert np.array_equal(ours.numpy(), expected)


def test_feature_network_clean_resize_feeds_floats():
    ev = Evaluator(resize="clean")
    x = torch.randint(0, 256, (4, 1, 56, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ev.net.features(clean_resize(x, 28) / 127.5 - 1)
    torch.testing.assert_close(ev.features(x).feats, expected)
    assert not torch.allclose(Evaluator().features(x).feats, expected)  # legacy: antialiased bilinear, rounded
    with pytest.raises(GankitError, match="--resize tf: choose from legacy, clean"):
        Evaluator(resize="tf")


class _FakeInception(nn.Module):
    """torch-fidelity's module names around a pooling-only body: checks what reaches the network."""

    def __init__(self):
        super().__init__()
        for name in _POOL3_LAYERS:
            setattr(self, name, nn.Identity())
        self.AvgPool = nn.AdaptiveAvgPool2d(1)
        self.scale = nn.Parameter(torch.ones(()))  # gives the network its dtype
        self.seen = []

    def forward(self, x):  # the legacy path: uint8 in, resized inside
        self.seen.append(x)
        return (x.float().mean((2, 3)),)


def test_inception_clean_path_resizes_here_and_normalises():
    net = _FakeInception()
    x = torch.randint(0, 256, (3, 1, 20, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    f = inception_features(net, x, batch=2, resize="clean")
    expected = ((clean_resize(x.expand(-1, 3, -1, -1), 299) - 128) / 128).mean((2, 3))  # grey repeated to RGB
    torch.testing.assert_close(f, expected)
    assert net.seen == []  # torch-fidelity's forward (uint8 only, its own resize) is bypassed
    inception_features(net, x, resize="legacy")
    assert len(net.seen) == 1 and net.seen[0].dtype == torch.uint8 and net.seen[0].shape == (3, 3, 20, 30)


def test_network_check_refuses_other_networks_dims_and_resize():
    net = StatsNetwork(resize="legacy")
    rec = net.record
    assert rec["dims"] == 128 and rec["network"] == "mnist-cnn" and rec["input_size"] == 28
    z = np.zeros(2048)
    with pytest.raises(GankitError, match="2048-dim features, but mnist-cnn .* gives 128-dim.*--inception-weights"):
        net.check(FidStats(z, np.eye(2048), None, "pfid.npz"))
    mu, sigma = np.zeros(128), np.eye(128)
    net.check(FidStats(mu, sigma, None, "foreign.npz"))  # no record: only the dimension can be checked
    net.check(FidStats(mu, sigma, dict(rec), "ours.npz"))
    with pytest.raises(GankitError, match="taken with other-net .*not comparable"):
        net.check(FidStats(mu, sigma, {**rec, "network": "other-net", "network_sha256": "ab" * 32}, "o.npz"))
    with pytest.raises(GankitError, match="taken with --resize clean.*pass --resize clean"):
        net.check(FidStats(mu, sigma, {**rec, "resize": "clean"}, "c.npz"))


def test_cli_save_stats_then_ref_stats(tmp_path, capsys):
    x = load_data("mnist:test").x
    np.savez(tmp_path / "ref.npz", x=x[:300].numpy())
    np.savez(tmp_path / "s.npz", x=x[300:600].numpy())
    ref = str(tmp_path / "ref.npz")
    stats = tmp_path / "ref_stats.npz"
    assert main(["eval", "--save-stats", str(stats), "--ref", ref]) == 0  # no TARGET: the statistics of --ref
    assert "300 images of" in capsys.readouterr().out
    rec = load_stats(stats).protocol
    assert rec["kind"] == "reference" and rec["n"] == 300 and rec["resize"] == "legacy" and rec["dims"] == 128
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path / "s.npz"), "--ref", ref, "--ref-stats", str(stats), "--metrics", "fid",
                 "--save-stats", str(tmp_path / "s_stats.npz"), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["fid_ref_stats"] == pytest.approx(r["fid"], rel=1e-4)  # the same two sets, two routes
    assert r["protocol"]["ref_stats"]["file_protocol"]["source"] == ref and r["protocol"]["resize"] == "legacy"
    assert load_stats(tmp_path / "s_stats.npz").protocol["kind"] == "samples"
    capsys.readouterr()
    # statistics of another dimension, and of another resize: one line each, nothing sampled
    np.savez(tmp_path / "incep.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    assert main(["eval", str(tmp_path / "s.npz"), "--ref-stats", str(tmp_path / "incep.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2048-dim features" in err and "128-dim" in err
    assert main(["eval", str(tmp_path / "s.npz"), "--ref-stats", str(stats), "--resize", "clean"]) == 2
    assert "pass --resize legacy" in capsys.readouterr().err
    assert main(["eval", "--floor", "--save-stats", str(tmp_path / "f.npz")]) == 2
    assert not (tmp_path / "f.npz").exists()
