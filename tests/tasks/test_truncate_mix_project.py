"""What StyleGAN users expect, on every generator, at tiny sizes: the truncation trick (in z by
scaling, in w on stylegan2), style-mixing grids (checked cell by cell against hand-built style
inputs), projection of an image (the generator's own sample is recovered; the files it writes), the
search core's schedule, repair by inversion searching w on stylegan2, and every bad input refused
in one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data import from_model
from gankit.errors import GankitError
from gankit.models.latent import TRUNCATION_W, TRUNCATION_Z, truncate_z
from gankit.tasks.generate.invert import InvertSettings, invert
from gankit.tasks.generate.project import ProjectSettings, project_image
from gankit.tasks.generate.search import Schedule, stylegan2_schedule
from gankit.tasks.inpaint.evaluation import fixed_masks

FAKE = "data.source=fake:1x28x28:64"
TINY = ["model.g_width=4", "model.d_width=4", "model.z_dim=8", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "train.batch=8", "log.progress=false", "log.grid_n=4", "log.every=2", "device=cpu", "train.steps=2"]
SG = [FAKE, "model.g_width=4", "model.d_width=4", "model.z_dim=8", "model.w_dim=8", "model.mapping_layers=2",
      "train.batch=8", "log.progress=false", "log.grid_n=4", "device=cpu", "train.steps=2"]
PSNR_BOUND = 30.0  # dB: a sample the generator made is recovered far better (measured: ~53 dB in 100 steps)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """An MLP generator 2 steps in: its samples vary (a DCGAN's at init are all but constant grey)."""
    return gankit.train(load_config("seed-mlp", overrides=[*TINY, FAKE]), str(tmp_path_factory.mktemp("mlp") / "run"))


@pytest.fixture(scope="module")
def sg_run(tmp_path_factory):
    return gankit.train(load_config("stylegan2", overrides=SG), str(tmp_path_factory.mktemp("sg") / "run"))


def _png(path, a):
    Image.fromarray(a).save(path)
    return path


def _images(t: torch.Tensor) -> torch.Tensor:
    return from_model(t, "image")


def _one_line_error(capsys, argv, msg):
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], (argv, err)


# ---- truncation --------------------------------------------------------------------------------

def test_truncation_in_z_psi_one_is_plain_sampling_and_small_psi_approaches_G0(mlp_run):
    plain = mlp_run.sample(16, seed=3)
    assert torch.equal(mlp_run.sample(16, seed=3, truncate=1.0), plain)
    g0 = mlp_run.generate(torch.zeros(1, 8)).float()  # G(0): where truncation in z leads
    dist = [float((mlp_run.sample(16, seed=3, truncate=psi).float() - g0).abs().mean())
            for psi in (1.0, 0.5, 0.25, 0.1, 0.01)]
    assert all(a > b for a, b in zip(dist, dist[1:])), dist  # shrinks monotonically with psi
    assert dist[0] > 10 and dist[-1] < 0.5, dist  # from varied samples to (all but) G(0) itself
    # the latents' own truncation is the same scaling: truncating there or in generate agrees
    z = mlp_run.latents(16, seed=3)
    torch.testing.assert_close(mlp_run.latents(16, seed=3, truncate=0.3), 0.3 * z)
    assert torch.equal(mlp_run.generate(mlp_run.latents(16, seed=3, truncate=0.3)),
                       mlp_run.sample(16, seed=3, truncate=0.3))
    assert mlp_run.truncation == TRUNCATION_Z and "scaling" in TRUNCATION_Z


def test_truncation_in_z_keeps_infogan_codes():
    z_in = torch.cat([torch.full((2, 3), 2.0), torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, -0.5]])], 1)
    out = truncate_z(z_in, 0.5, z_dim=3)
    torch.testing.assert_close(out[:, :3], torch.ones(2, 3))  # noise scaled
    assert torch.equal(out[:, 3:], z_in[:, 3:])  # one-hot and continuous codes as they were
    assert torch.equal(z_in[:, :3], torch.full((2, 3), 2.0))  # the input is not changed in place


def test_bad_psi_is_refused_in_one_line(mlp_run, tmp_path, capsys):
    run = str(mlp_run.dir)
    for bad in ("1.5", "0", "-0.2", "nan"):
        _one_line_error(capsys, ["sample", run, "--truncate", bad, "--out", str(tmp_path / "g.png")],
                        f"--truncate {float(bad):g}: expected 0 < psi <= 1")
        _one_line_error(capsys, ["synth", run, "--per-class", "2", "--npz", str(tmp_path / "s.npz"), "--truncate", bad],
                        "expected 0 < psi <= 1")  # gankit synth shares the check and the implementation
    assert not (tmp_path / "g.png").exists()
    assert main(["sample", run, "--truncate", "1", "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    with pytest.raises(GankitError, match="expected 0 < psi <= 1"):
        mlp_run.sample(2, truncate=1.01)


def test_stylegan2_truncates_in_w(sg_run):
    G = sg_run.G
    assert sg_run.styles and sg_run.truncation == TRUNCATION_W
    center = _images(G.synthesis(G.w_avg[None, None].expand(1, G.num_ws, -1), noise="const")).int()
    tiny = sg_run.sample(6, seed=0, truncate=1e-4).int()
    plain = sg_run.sample(6, seed=0).int()
    # mapping() pixel-normalises z, so truncation in z would change nothing here: it must be in w
    assert (plain - center).abs().max() > 50
    assert (tiny - center).abs().max() <= 3  # the w_avg image (up to the random noise inputs, still ~0 here)
    with pytest.raises(GankitError, match="truncates in w"):
        sg_run.latents(2, truncate=0.5)


# ---- style mixing ------------------------------------------------------------------------------

def test_style_mix_grid_matches_hand_built_styles(sg_run):
    G, n = sg_run.G, 3
    grid = sg_run.style_mix(n, seed=1)
    assert grid.shape == ((n + 1) ** 2, 1, 28, 28) and grid.dtype == torch.uint8
    assert (grid[0] == 255).all()  # the blank corner
    with torch.no_grad():
        w = G.mapping(sg_run.latents(2 * n, seed=1))  # the sources: A_0..A_2, then B_0..B_2
        a, b = 0, 3  # the default: the coarse inputs, min(4, num_ws // 2) = 3 of 6 at 28 px
        assert G.num_ws == 6
        for i in range(n):
            assert torch.equal(grid[(i + 1) * (n + 1)], _images(G.synthesis(w[n + i][None, None].repeat(1, 6, 1),
                                                                            noise="const"))[0])  # row head: B_i
            for j in range(n):
                ws = w[j][None, None].repeat(1, 6, 1).clone()  # A_j's styles ...
                ws[:, a:b] = w[n + i]  # ... with B_i's coarse ones
                cell = grid[(i + 1) * (n + 1) + 1 + j].int()
                assert (cell - _images(G.synthesis(ws, noise="const"))[0].int()).abs().max() <= 1, (i, j)
        assert torch.equal(grid[1:n + 1], _images(G.synthesis(w[:n, None].repeat(1, 6, 1), noise="const")))
    # every input from the row source: each cell is that row's head; none: each cell is its column's head
    whole = sg_run.style_mix(n, seed=1, layers=(0, 6)).view(n + 1, n + 1, 1, 28, 28)
    assert ((whole[1:, 1:].int() - whole[1:, :1].int()).abs().max()) <= 1
    assert not torch.equal(whole[1, 1], whole[0, 1])  # mixing changed the cell: the test can fail


def test_cli_mix_writes_a_grid_and_refuses_what_it_cannot_mix(sg_run, mlp_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(sg_run.dir), "--mix", "--n", "2", "--seed", "0", "--mix-layers", "2:6",
                 "--truncate", "0.7", "--out", str(out)]) == 0
    w, h = Image.open(out).size
    assert w == h and w % (3 * 28 + 4 * 2) == 0  # 3 x 3 cells of 28 px with 2 px gaps, upscaled
    cases = [
        ([str(mlp_run.dir), "--mix"], "--mix needs a stylegan2 run (style inputs); this is a mlp run"),
        ([str(sg_run.dir), "--mix", "--mix-layers", "4:9"], "--mix-layers 4:9: expected a:b with 0 <= a < b <= 6"),
        ([str(sg_run.dir), "--mix", "--mix-layers", "3:3"], "0 <= a < b"),
        ([str(sg_run.dir), "--mix", "--mix-layers", "x"], "expected A:B"),
        ([str(sg_run.dir), "--mix-layers", "0:2"], "--mix-layers goes with --mix"),
        ([str(sg_run.dir), "--mix", "--npz", str(tmp_path / "m.npz")], "--mix writes one style-mixing grid"),
    ]
    for args, msg in cases:
        _one_line_error(capsys, ["sample", *args, "--out", str(tmp_path / "bad.png")], msg)
    assert not (tmp_path / "bad.png").exists()


# ---- the search core ---------------------------------------------------------------------------

def test_the_projector_schedule():
    s = stylegan2_schedule(0.1)
    # lr = 0.1 * min(1, t / 0.05) * (1/2 - 1/2 cos(pi min(1, (1 - t) / 0.25)))
    for t, lr in [(0.0, 0.0), (0.025, 0.05), (0.5, 0.1), (0.875, 0.05), (1.0, 0.0)]:
        assert s.lr_at(t) == pytest.approx(lr, abs=1e-12), t
    # noise / spread = 0.05 * max(0, 1 - t / 0.75)^2
    for t, sigma in [(0.0, 0.05), (0.375, 0.0125), (0.75, 0.0), (0.9, 0.0)]:
        assert s.noise_at(t) == pytest.approx(sigma, abs=1e-12), t
    flat = Schedule(0.05)
    assert flat.lr_at(0.0) == flat.lr_at(0.99) == 0.05 and flat.noise_at(0.0) == 0.0


# ---- projection --------------------------------------------------------------------------------

def test_projection_recovers_the_generators_own_sample(mlp_run):
    x = mlp_run.sample(1, seed=7)[0]  # a z exists that makes it exactly
    G = mlp_run.G
    recon, latent, info = project_image(mlp_run, x, ProjectSettings(steps=60, seed=1))
    assert info["space"] == "z" and info["restarts"] == 4 and latent["z"].shape == (8,)
    assert info["loss_end"] < info["loss_start"] / 100 and info["psnr"] > PSNR_BOUND, info
    assert info["loss"]["feature_weight"] == 0.1  # 1-channel, 28 px: the feature term is on
    assert all(p.requires_grad for p in G.parameters())  # the search froze G and gave it back
    with torch.no_grad():  # the saved latent makes the reconstruction
        assert torch.equal(_images(G(torch.from_numpy(latent["z"])[None]))[0], recon)
    mse = (recon.double() - x.double()).pow(2).mean()
    assert info["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / float(mse)), abs=1e-3)
    assert len(info["loss_curve"]) == 60 and info["loss_curve"][0] > info["loss_curve"][-1]


def test_projection_in_w_and_w_plus_on_stylegan2(sg_run):
    G = sg_run.G
    x = sg_run.sample(1, seed=7)[0]
    recon, latent, info = project_image(sg_run, x, ProjectSettings(steps=60))
    assert info["space"] == "w" and info["restarts"] == 1 and latent["w"].shape == (8,)
    assert info["loss_end"] < info["loss_start"] and info["psnr"] > PSNR_BOUND, info
    assert info["noise_inputs"].startswith("const")
    with torch.no_grad():
        ws = torch.from_numpy(latent["w"])[None, None].repeat(1, G.num_ws, 1)
        assert torch.equal(_images(G.synthesis(ws, noise="const"))[0], recon)
    _, latent_p, info_p = project_image(sg_run, x, ProjectSettings(steps=20, space="w+"))
    assert info_p["space"] == "w+" and latent_p["ws"].shape == (6, 8) and str(latent_p["space"]) == "w+"
    assert info_p["loss_end"] < info_p["loss_start"]


def test_cli_project_writes_its_files(mlp_run, tmp_path, capsys):
    img = _png(tmp_path / "digit.png", mlp_run.sample(1, seed=2)[0, 0].numpy())
    out = tmp_path / "proj"
    assert main(["project", str(mlp_run.dir), str(img), "--out", str(out), "--steps", "40", "--restarts", "2"]) == 0
    said = capsys.readouterr().out
    assert "into z (40 steps, 2 restarts)" in said and "PSNR" in said
    assert sorted(p.name for p in out.iterdir()) == ["latent.npz", "project.json", "projected.png", "target.png"]
    rec = json.loads((out / "project.json").read_text())
    assert rec["run"] == str(mlp_run.dir) and rec["step"] == 2 and rec["steps"] == 40 and rec["restarts"] == 2
    assert rec["loss_end"] < rec["loss_start"] and rec["psnr"] > PSNR_BOUND and rec["command"].startswith("gankit project")
    npz = np.load(out / "latent.npz")
    assert str(npz["space"]) == "z" and npz["z"].shape == (8,)
    target = np.asarray(Image.open(out / "target.png"))
    assert np.array_equal(target, np.asarray(Image.open(img)))
    projected = np.asarray(Image.open(out / "projected.png")).astype(float)
    psnr = 10 * math.log10(255 ** 2 / max(((projected - target) ** 2).mean(), 1e-10))
    assert psnr == pytest.approx(rec["psnr"], abs=1e-3)
    # the output exists: refused before any work, unless --overwrite
    _one_line_error(capsys, ["project", str(mlp_run.dir), str(img), "--out", str(out), "--steps", "1"], "already exists")
    assert main(["project", str(mlp_run.dir), str(img), "--out", str(out), "--steps", "1", "--overwrite"]) == 0
    assert json.loads((out / "project.json").read_text())["steps"] == 1


def test_cli_project_refuses_bad_input_in_one_line(mlp_run, sg_run, tmp_path, capsys):
    rgb = _png(tmp_path / "image.png", np.full((64, 64, 3), 90, np.uint8))
    grey = _png(tmp_path / "grey.png", np.full((28, 28), 90, np.uint8))
    inpaint = gankit.train(load_config("inpaint", overrides=["model.g_width=4", "model.d_width=4", "train.batch=4",
                                                             "log.progress=false", "device=cpu", "train.steps=1",
                                                             "log.grid_every=1000", "inpaint.grid_examples=2"]),
                           str(tmp_path / "inp"))
    cgan = gankit.train(load_config("cgan", overrides=[*TINY, "model.arch=mlp", "train.steps=1", "data.source=mnist"]),
                        str(tmp_path / "cgan"))
    capsys.readouterr()  # training's own notes
    out = tmp_path / "o"
    run, sg = str(mlp_run.dir), str(sg_run.dir)
    cases = [
        ([run, str(rgb)], "image.png is 64x64 RGB; this run generates 28x28 grey: pass --resize to fit it"),
        ([str(inpaint.dir), str(grey)], "gankit project needs a 'generate' run; this is a 'inpaint' run"),
        ([str(cgan.dir), str(grey)], "a conditional run; projection needs the image's class: pass --class K"),
        ([str(cgan.dir), str(grey), "--class", "10"], "class 10 is out of range"),
        ([run, str(grey), "--class", "1"], "--class needs a conditional run"),
        ([run, str(grey), "--space", "w"], "--space w needs a stylegan2 run (a mapping network); this is a mlp run"),
        ([run, str(grey), "--steps", "0"], "--steps 0: expected a number of steps >= 1"),
        ([run, str(grey), "--lr", "-1"], "--lr -1: expected a learning rate > 0"),
        ([run, str(grey), "--feature-weight", "-1"], "expected a weight >= 0"),
        ([sg, str(tmp_path / "nope.png")], "no such image file"),
    ]
    for args, msg in cases:
        steps = [] if "--steps" in args else ["--steps", "2"]
        _one_line_error(capsys, ["project", *args, "--out", str(out), *steps], msg)
        assert not out.exists()
    assert main(["project", run, str(rgb), "--resize", "--out", str(out), "--steps", "2"]) == 0
    assert "resized 64x64 to 28x28" in capsys.readouterr().err  # the conversion said in one line
    assert np.asarray(Image.open(out / "target.png")).shape == (28, 28)
    assert main(["project", str(cgan.dir), str(grey), "--class", "3", "--out", str(tmp_path / "c"), "--steps", "2"]) == 0
    assert int(np.load(tmp_path / "c" / "latent.npz")["label"]) == 3


# ---- repair by inversion on stylegan2 ----------------------------------------------------------

def test_repair_by_inversion_searches_w_on_stylegan2(sg_run):
    x = sg_run.sample(2, seed=5)
    masks = fixed_masks("box:0.25", 2, 28, 28)
    out, info = invert(sg_run, x, masks, InvertSettings(restarts=2, steps=30, lr=0.1, prior="d"))
    assert info["space"] == "w"
    assert all(e < s for s, e in zip(info["context_start"], info["context_end"])), info
    known = ~masks.expand_as(x)
    assert torch.equal(out[known], x[known])
    with pytest.raises(GankitError, match="--prior norm keeps z on the prior's shell"):
        invert(sg_run, x, masks, InvertSettings(restarts=1, steps=1, prior="norm"))


def test_stylegan2_samples_are_seed_exact(sg_run):
    """Sampling uses the fixed noise buffers ("const"), so a seed gives the same images every call,
    as `gankit sample --seed` promises; training's noise is random (the grid differs by noise)."""
    strengths = [m.noise_strength for m in sg_run.G.modules() if hasattr(m, "noise_strength")]
    saved = [s.detach().clone() for s in strengths]
    with torch.no_grad():
        for s in strengths:  # 2 steps in, the noise is still ~0; make it matter
            s.fill_(1.0)
        z = sg_run.latents(4, seed=3)
        assert not torch.equal(sg_run.G(z, noise="random"), sg_run.G(z, noise="random"))  # the test has teeth
        a, b = sg_run.sample(4, seed=3), sg_run.sample(4, seed=3)
        assert torch.equal(a, b) and not torch.equal(a, sg_run.sample(4, seed=4))
        for s, v in zip(strengths, saved):
            s.copy_(v)
