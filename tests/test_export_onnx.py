"""ONNX export (gankit.export_onnx, each task's `Task.onnx_graphs`): every task's inference network
traced, checked by onnxruntime against PyTorch (other batch sizes, other sizes where dynamic), a
graph that disagrees refused with nothing written, and the onnxruntime examples of
docs/ecosystem-onnx.md run against the graphs of their task.

Networks are built untrained (the task's `inference_nets`, seeded): the graphs do not depend on
training, and building them costs nothing; one run is trained, for the command line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import GankitError
from gankit.export_onnx import TOL, OnnxModel, check, onnx_models, onnx_paths, trace, write_onnx
from gankit.run import Run
from gankit.tasks import get_task
from gankit.tasks.base import OnnxGraph

DOCS = Path(__file__).resolve().parents[1] / "docs" / "ecosystem-onnx.md"


def _image(c: int, s: int, classes: int = 10) -> dict:
    return {"name": "t", "kind": "image", "shape": [c, s, s], "scale": 1.0, "classes": [str(i) for i in range(classes)]}


PAIRS = {"name": "t", "kind": "pairs", "shape_a": [1, 16, 16], "shape_b": [3, 16, 16]}
AUDIO = {"name": "t", "kind": "audio", "classes": None, "spec_mu": [0.0] * 128, "spec_sigma": [1.0] * 128}

# case: (preset, overrides, data description, input names, dynamic height and width, docs example)
CASES = {
    "cgan": ("cgan", ["model.g_width=4", "model.z_dim=4"], _image(1, 28), ["z", "label"], False, "generate"),
    "pix2pix": ("pix2pix", ["model.g_width=4"], PAIRS, ["image"], True, "translate"),
    "srresnet": ("srresnet", ["model.g_width=4", "superres.g_blocks=1"],
                 {"name": "t", "scale": 4, "patch": 32, "channels": 3, "shape": [3, 32, 32]}, ["low"], True,
                 "superres"),
    "inpaint": ("inpaint", ["model.g_width=4"], _image(1, 16), ["image", "mask"], True, "inpaint"),
    "interp-flow": ("frame-interp", ["model.g_width=4"], _image(1, 16),
                    ["prev", "next", "warp_prev", "warp_next"], True, "interpolate"),
    "denoise": ("denoise", ["model.g_width=4"], _image(1, 16), ["noisy"], True, "denoise"),
    "wavegan": ("wavegan", ["model.g_width=2", "model.z_dim=8"], AUDIO, ["z"], False, "audio"),
    "recon-ct": ("recon-ct", ["model.g_width=4", "recon.size=32"], {"name": "phantoms"}, ["fbp"], True, "recon-ct"),
    "recon-mri": ("recon-mri", ["model.g_width=4", "recon.size=32"], {"name": "phantoms"},
                  ["image", "kspace", "mask"], True, "recon-mri"),
}
SLOW_CASES = {
    "stylegan2": ("stylegan2", ["model.g_width=8"], _image(1, 28), ["z", "psi"], False, None),
    "stylegan2-cond": ("stylegan2", ["model.g_width=8", "model.conditional=true"], _image(1, 28),
                       ["z", "label", "psi"], False, None),
    "infogan": ("infogan", ["model.g_width=4"], _image(1, 28), ["z"], False, None),
    "r3gan": ("r3gan", [], _image(3, 32), ["z"], False, None),
    "toy": ("toy-mlp", [], {"name": "ring8", "kind": "points", "shape": [2], "scale": 2.0, "classes": None},
            ["z"], False, None),
    "interp": ("frame-interp", ["model.g_width=4", "interpolate.flow=false"], _image(1, 16), ["prev", "next"], True,
               None),
    "specgan": ("specgan", ["model.g_width=2", "model.z_dim=8"], AUDIO, ["z"], False, None),
    "specgan-cond": ("specgan-cond-cpu", ["model.g_width=2", "model.z_dim=8"],
                     {**AUDIO, "classes": [str(i) for i in range(10)]}, ["z", "label"], False, None),
    "hifigan": ("hifigan-cpu", ["model.g_width=16"], {"name": "t", "kind": "audio"}, ["mel"], False, None),
    "vocos": ("vocos-cpu", ["vocoder.vocos_dim=16", "vocoder.vocos_layers=1", "vocoder.vocos_mlp=16"],
              {"name": "t", "kind": "audio"}, ["mel"], False, None),
}


def fresh_run(preset: str, sets: list[str], meta: dict) -> Run:
    """A run of `preset` with untrained (seeded) networks, as `Run.load` would return it."""
    cfg = gankit.load_config(preset, overrides=[*sets, "device=cpu"])
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in get_task(cfg.task).inference_nets(cfg, meta).items()}
    return Run.for_task(cfg.task)(directory=Path("."), config=cfg, nets=nets, data_meta=meta, step=0,
                                  device=torch.device("cpu"), ema=False, task=cfg.task)


def doc_examples() -> dict[str, str]:
    """docs/ecosystem-onnx.md's python blocks by the task their first comment names."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    return {b.split(":", 1)[0].lstrip("# ").strip(): b for b in blocks}


def _png(path: Path, h: int, w: int, c: int, seed: int, mask: bool = False) -> None:
    g = np.random.default_rng(seed)
    if mask:
        a = np.zeros((h, w), np.uint8)
        a[h // 4:h // 2, w // 4:w // 2] = 255
    else:
        a = g.integers(0, 256, (h, w, c) if c == 3 else (h, w), dtype=np.uint8)
    Image.fromarray(a).save(path)


def run_doc_example(task: str, models: list[OnnxModel], c: int, where: Path) -> None:
    """Write the graph where the task's docs example reads it, its input files, and run it there."""
    code = doc_examples()[task]
    model = Path(re.search(r'InferenceSession\("([^"]+)"\)', code).group(1))
    write_onnx(models[:1], [where / model])
    for name, (h, w) in {"edges.png": (20, 24), "small.png": (10, 12), "photo.png": (16, 16), "mask.png": (16, 16),
                         "frame0.png": (16, 16), "frame1.png": (16, 16), "noisy.png": (20, 18)}.items():
        if name in code:
            _png(where / name, h, w, c, seed=len(name), mask=name == "mask.png")
    if "sino.npy" in code:  # a 24 px disc phantom at 30 views: a size the graph was not traced at
        from skimage.transform import radon

        yy, xx = np.mgrid[:24, :24] - 12
        np.save(where / "sino.npy", radon((xx ** 2 + yy ** 2 < 64).astype(np.float64), np.linspace(0, 180, 30, False)))
    if "kspace.npy" in code:
        x = np.random.default_rng(0).random((24, 24))
        np.save(where / "kspace.npy", np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho")))
        np.save(where / "mask.npy", np.random.default_rng(1).random(24) < 0.3)
    cwd = os.getcwd()
    os.chdir(where)
    try:
        scope: dict = {}
        exec(compile(code, f"{DOCS.name}:{task}", "exec"), scope)
    finally:
        os.chdir(cwd)
    return scope


def _check_case(case, tmp_path):
    preset, sets, meta, inputs, spatial, doc = case
    run = fresh_run(preset, sets, meta)
    models = onnx_models(run, "tiny")
    for m in models:
        assert m.max_diff <= TOL
        sess = ort.InferenceSession(m.data, providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == inputs
        assert sess.get_inputs()[0].shape[0] == "batch"
        assert ("height" in sess.get_inputs()[0].shape) == spatial
        assert len(m.checked) == 3 and (" at " in m.checked[-1]) == spatial
        if spatial:  # a size the U-Nets' own multiples (16 here) do not divide: the graph pads itself
            h, w = m.graph.size
            assert m.checked[-1] == f"batch 3 at {h + 1}x{w + 2}" and m.dynamic[1] == "height and width (any)"
    return run, models, doc


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_task_exports_a_checked_graph_and_its_docs_example_runs(name, tmp_path):
    run, models, doc = _check_case(CASES[name], tmp_path)
    c = (run.data_meta.get("shape") or [1])[0] if run.data_meta.get("kind") != "pairs" else 1
    scope = run_doc_example(doc, models, c, tmp_path)
    out = {"generate": "images", "translate": "y", "superres": "y", "inpaint": "y", "interpolate": "mid",
           "denoise": "y", "audio": "clips", "recon-ct": "image", "recon-mri": "estimate"}[doc]
    result = scope[out]
    if doc == "superres":
        assert result.shape == (3, 40, 48)  # 4x the 10x12 input, at a size the export never saw
    if doc in ("translate", "denoise"):
        assert result.shape[1:] == {"translate": (20, 24), "denoise": (20, 18)}[doc]  # padded, cropped back
    if doc == "inpaint":  # the known pixels come back as they went in
        x = np.asarray(Image.open(tmp_path / "photo.png"), np.float32) / 127.5 - 1
        known = np.asarray(Image.open(tmp_path / "mask.png")) <= 127
        np.testing.assert_allclose(result[0][known], x[known], atol=1e-6)
    if doc == "generate":
        assert result.shape == (16, 1, 28, 28) and result.dtype == np.uint8
    if doc == "recon-ct":
        assert result.shape == (24, 24) and np.isfinite(result).all()
    if doc == "recon-mri":  # data-consistent: the estimate's k-space is the measurement on the sampled columns
        k, cols = np.load(tmp_path / "kspace.npy"), np.load(tmp_path / "mask.npy")
        got = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(result), norm="ortho"))
        assert np.abs(got - k)[:, cols].max() <= 1e-5 * np.abs(k).max()
        assert np.abs(got - k)[:, ~cols].max() > 1e-2  # off the mask it is the network's guess


def test_recon_with_fbpconvnet_exports_a_checked_graph():
    """recon.g_arch = fbpconvnet: the graph pads any size to its multiple (8) and agrees with
    PyTorch; its zero-initialised last layer is randomised so that the whole network is compared."""
    run = fresh_run("recon-ct", ["model.g_width=4", "recon.size=16", "recon.g_arch=fbpconvnet"], {"name": "phantoms"})
    torch.nn.init.normal_(run.nets["G"].out.weight)
    (m,) = onnx_models(run, "tiny")
    assert m.max_diff <= TOL and m.checked[-1] == "batch 3 at 17x18"
    x = np.random.default_rng(0).random((2, 1, 21, 30), dtype=np.float32) * 2 - 1
    (got,) = ort.InferenceSession(m.data, providers=["CPUExecutionProvider"]).run(None, {"fbp": x})
    with torch.no_grad():
        want = torch.from_numpy(x) + run.nets["G"](torch.from_numpy(x))
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
    assert np.abs(got - x).max() > 1e-2  # the network's correction is in the graph


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_CASES))
def test_every_other_generator_exports_a_checked_graph(name, tmp_path):
    _check_case(SLOW_CASES[name], tmp_path)


@pytest.mark.slow
def test_stylegan2_graph_at_psi_1_is_the_runs_own_sampling():
    """One graph for every truncation: psi = 1 gives `Run.generate`'s images, psi < 1 `truncate=psi`'s."""
    run = fresh_run("stylegan2", ["model.g_width=4", "model.z_dim=8", "model.w_dim=8"], _image(1, 28))
    (m,) = onnx_models(run, "tiny")
    sess = ort.InferenceSession(m.data, providers=["CPUExecutionProvider"])
    z = run.latents(3, seed=0)
    for psi in (1.0, 0.5):
        x = sess.run(None, {"z": z.numpy(), "psi": np.full(3, psi, np.float32)})[0]
        got = torch.from_numpy(((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8))
        want = run.generate(z, truncate=None if psi == 1 else psi)
        assert (got.int() - want.int()).abs().max() <= 1  # a rounding boundary may move one level


def test_text_runs_are_refused_in_one_line():
    with pytest.raises(GankitError, match=r"^the text task has no ONNX export: .*token by token"):
        get_task("text").onnx_graphs(None, {}, {})


class _BakedBatch(torch.nn.Module):
    def forward(self, x):
        return x.reshape(len(x), -1) * 2  # len(x): a Python int, fixed at the traced batch


def test_a_graph_with_a_baked_batch_is_caught():
    graph = OnnxGraph("G", _BakedBatch(), lambda n, hw, g: {"x": torch.randn(n, 3, generator=g)})
    with pytest.raises(GankitError, match=r"^ONNX export of r's G fails in onnxruntime \(batch 1\)"):
        check(graph, trace(graph), "r")


def test_a_unet_traced_without_padding_in_the_graph_is_caught_at_another_size():
    """What AnySize is for: the U-Net's own padding branch, traced at 16x16, fixed at none."""
    from gankit.tasks.onnx_common import image_graph

    G = fresh_run("denoise", ["model.g_width=2"], _image(1, 16)).nets["G"]
    graph = image_graph("G", G, {"noisy": 1}, (16, 16), pad_multiple=1)
    with pytest.raises(GankitError, match=r"^ONNX export of r's G (fails in onnxruntime|does not match PyTorch: "
                                          r"output of shape).*\(?batch 3 at 17x18"):
        check(graph, trace(graph), "r")


def test_a_graph_that_disagrees_with_pytorch_is_refused_and_nothing_written(tmp_path, monkeypatch):
    """The traced weights no longer those PyTorch runs (as a wrong export would be): an error, no file."""
    import gankit.export_onnx as eo

    real = eo.trace

    def corrupted(graph):
        data = real(graph)
        with torch.no_grad():
            next(graph.module.parameters()).add_(0.05)
        return data

    monkeypatch.setattr(eo, "trace", corrupted)
    run = fresh_run("denoise", ["model.g_width=4"], _image(1, 16))
    with pytest.raises(GankitError, match=r"^ONNX export of tiny's G does not match PyTorch: max \|onnx - torch\| "
                                          r"\S+ > 1\.0e-04 \(batch 2 at 16x16\); nothing written$"):
        onnx_models(run, "tiny")


@pytest.mark.slow
def test_several_networks_get_one_file_each(tmp_path):
    """CycleGAN: both directions, each checked (its ResNet at multiples of 4)."""
    run = fresh_run("cyclegan", ["model.g_width=2", "translate.g_blocks=1"], PAIRS)
    models = onnx_models(run, "tiny")
    assert [m.dynamic for m in models] == [["batch", "height and width (any)"]] * 2
    paths = onnx_paths(tmp_path / "m.onnx", models)
    assert [p.name for p in paths] == ["m.G_ab.onnx", "m.G_ba.onnx"]
    write_onnx(models, paths)
    ab = ort.InferenceSession(str(paths[0]), providers=["CPUExecutionProvider"])
    assert ab.get_inputs()[0].shape[1] == 1 and ab.get_outputs()[0].shape[1] == 3  # A (grey) -> B (colour)
    meta = ab.get_modelmeta().custom_metadata_map
    assert "padded in the graph to multiples of 4" in meta["notes"] and "A -> B" in meta["notes"]
