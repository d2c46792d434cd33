"""Inference at large sizes on a tiny 256 px stylegan2 run: `gankit sample --batch` (the same
samples whatever the batch), `gankit project` and the serve panels at 256 px, and grids shrunk
to at most viz.GRID_MAX_SIDE where they are shown, full size where the user asked for samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit import api, viz
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError

SIDE = 256
TINY = ["data.source=fake:3x256x256:8", "data.resolution=256", "data.channels=3", "model.cbase=512", "model.cmax=4", "model.z_dim=8",
        "model.w_dim=8", "model.mapping_layers=1", "train.batch=2", "train.steps=2", "log.every=1", "log.grid_n=4",
        "log.progress=false", "device=cpu", "train.precision=fp32"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("scale") / "sg256"
    gankit.train(load_config("stylegan2", overrides=TINY), out)
    return out


def test_samples_are_the_same_whatever_the_batch(run_dir):
    run = api.load(run_dir)
    assert run.gen_batch() == 2 ** 22 // SIDE ** 2 == 64  # the default shrinks with the image size
    whole = run.sample(5, seed=7, batch=5)
    assert whole.shape == (5, 3, SIDE, SIDE) and whole.dtype == torch.uint8
    # The same latents, chunked: equal but for float rounding (CPU kernels sum in another order
    # at another batch size, which moves a rare pixel across a rounding boundary: one level).
    for b in (1, 2, 3):
        diff = (run.sample(5, seed=7, batch=b).int() - whole.int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-4, b
    other = (run.sample(5, seed=8, batch=5).int() - whole.int()).abs()  # the seed matters: the check can fail
    assert (other > 0).float().mean() > 0.1
    with pytest.raises(GankitError, match="--batch 0: expected"):
        run.sample(2, seed=0, batch=0)


def test_sample_command_batches_and_writes_full_size(run_dir, tmp_path, capsys):
    grid, folder = tmp_path / "grid.png", tmp_path / "each"
    assert main(["sample", str(run_dir), "--n", "3", "--seed", "1", "--batch", "2", "--out", str(grid),
                 "--dir", str(folder)]) == 0
    assert Image.open(grid).size == (2 * (SIDE + 2) + 2,) * 2  # 3 cells, 2 per row, not shrunk
    first = np.asarray(Image.open(folder / "000000.png"))
    assert first.shape == (SIDE, SIDE, 3)
    want = api.load(run_dir).sample(3, seed=1, batch=3)[0].permute(1, 2, 0).numpy()
    assert np.abs(first.astype(int) - want).max() <= 1  # as the API's samples, to float rounding


def test_project_at_256(run_dir, tmp_path):
    target = np.asarray(Image.open(run_dir / "samples" / sorted(p.name for p in (run_dir / "samples").iterdir())[-1]))
    img = tmp_path / "face.png"
    Image.fromarray(np.ascontiguousarray(target[2:2 + SIDE, 2:2 + SIDE])).save(img)  # the grid's first cell
    r = api.project(run_dir, img, tmp_path / "proj", steps=2)
    assert r["space"] == "w" and np.isfinite(r["psnr"])
    assert np.asarray(Image.open(tmp_path / "proj" / "projected.png")).shape == (SIDE, SIDE, 3)


def test_serve_samples_at_256_and_caps_the_grid(run_dir):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    import base64
    import io
    import warnings

    from gankit.apps.serve import make_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient
    c = TestClient(make_app(api.load(run_dir)), base_url="http://localhost")  # a name the server answers

    def grid(n):
        resp = c.post("/api/sample", json={"n": n, "seed": 0})
        assert resp.status_code == 200, resp.text
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(resp.json()["image"].split(",", 1)[1]))))

    assert grid(4).shape == (2 * (SIDE + 2) + 2,) * 2 + (3,)  # fits: full size
    big = grid(64)  # 8 x 258 + 2 = 2066 px at full size
    assert max(big.shape[:2]) <= viz.GRID_MAX_SIDE and big.shape[0] == 8 * (253 + 2) + 2


def test_training_grids_are_capped(run_dir, tmp_path):
    assert max(Image.open(p).size[0] for p in (run_dir / "samples").iterdir()) == 2 * (SIDE + 2) + 2
    x = torch.full((16, 3, 1024, 1024), 200, dtype=torch.uint8)
    out = viz.save_grid(x, tmp_path / "g.png")
    a = np.asarray(Image.open(out))
    assert a.shape == (4 * (509 + 2) + 2,) * 2 + (3,) and max(a.shape) <= viz.GRID_MAX_SIDE
    assert (a[2:511, 2:511] == 200).all()  # a flat image stays flat
    assert np.asarray(Image.open(viz.save_grid(x[:1, :, :64, :64], tmp_path / "s.png"))).shape[0] == 68 * 4  # small: 4x up


def test_cells_shrink_by_box_averages():
    checker = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    checker[..., ::2, ::2] = checker[..., 1::2, 1::2] = 254
    small = viz.fit_cells(checker, nrow=1, pad=2, max_side=8)  # room for a 4 px cell: each pixel the mean of 2x2
    assert small.shape == (1, 1, 4, 4) and (small == 127).all()
    assert viz.fit_cells(checker, 1, 2, 12) is checker  # fits: untouched


def test_in_training_evaluation_runs_g_a_few_images_at_a_time(run_dir):
    """eval.every's samples at 256 px: each seeded chunk's latents as drawn, through G 64 at a
    time (not 1,000: that would not fit a GPU at 256 px), the same images as in one call."""
    from gankit.tasks.generate.evaluation import InTrainingEval
    from gankit.training.distributed import Dist

    class ConstNoise(torch.nn.Module):  # stylegan2's random noise inputs would differ call to call
        def __init__(self, G):
            super().__init__()
            self.G = G

        def forward(self, z, y=None):
            return self.G(z, y, noise="const")

    run = api.load(run_dir)
    G = ConstNoise(run.G)
    calls = []
    G.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    ev = InTrainingEval(run.config, type("D", (), {"kind": "image", "shape": (3, SIDE, SIDE)})(), 0,
                        torch.device("cpu"), Dist())
    assert ev.gen_batch == 64
    ev.gen_batch = 3
    few = ev.samples(G, 7)
    assert calls == [3, 3, 1] and few.shape == (7, 3, SIDE, SIDE)
    ev.gen_batch = 7
    diff = (ev.samples(G, 7).int() - few.int()).abs()
    assert calls[3:] == [7]
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-4


def test_training_grids_call_g_a_bounded_batch_at_a_time(tmp_path, monkeypatch):
    """The grid written during training runs G on at most GEN_PIXELS' worth of images per call
    (4 at 1024 px), so a large run's grid fits where its training does; here 3 images of 8x8 per
    call for a grid of 4: calls of 3 and 1 per grid."""
    import gankit.tasks.generate.task as task_mod
    from gankit.models.mlp import MLPGenerator

    monkeypatch.setattr(task_mod, "GEN_PIXELS", 3 * 8 * 8)
    sizes = []

    def hook(module, args, out):
        if isinstance(module, MLPGenerator) and not torch.is_grad_enabled():
            sizes.append(len(args[0]))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        gankit.train(load_config("seed-mlp", overrides=[
            "data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
            "model.z_dim=4", "train.batch=8", "train.steps=1", "log.grid_n=4", "log.progress=false", "device=cpu"]),
            tmp_path / "r")
    finally:
        handle.remove()
    assert sizes and sizes == [3, 1] * (len(sizes) // 2)  # each grid written (step 0, the last step)
