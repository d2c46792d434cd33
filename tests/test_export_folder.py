"""The folder export and its model card (gankit.export.export_folder, gankit.card): what the
Hugging Face Hub reads (front matter, config.json, safetensors), the run's metrics as the run
recorded them, a folder `gankit.load` loads, and `gankit export --onnx` end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

import gankit
from gankit.card import eval_rows, scores, training_time
from gankit.cli import main
from gankit.errors import GankitError
from gankit.export import export_folder, load_exported

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "train.steps=4", "log.progress=false", "device=cpu",
        "eval.every=2", "eval.n=64", "eval.ref=fake:1x8x8:64"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "tiny-mlp"
    gankit.train(gankit.load_config("seed-mlp", overrides=TINY), out)
    return out


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def card_metrics(text: str) -> list[tuple[int, str, float]]:
    return [(int(s), k, float(v)) for s, k, v in re.findall(r"^\| (\d+) \| (\S+) \| (\S+) \| P\d+ \|$", text, re.M)]


def test_cli_folder_export_is_what_the_hub_reads_and_loads_back(run_dir, tmp_path, capsys):
    out = tmp_path / "tiny-export"
    assert main(["export", str(run_dir), "--out", str(out), "--onnx", "--license", "mit"]) == 0
    printed = capsys.readouterr().out
    assert "G: dynamic axes: batch" in printed and "onnxruntime vs PyTorch: max |diff|" in printed
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.onnx", "model.safetensors"]

    card = (out / "README.md").read_text()
    front = front_matter(card)
    assert front["library_name"] == "gankit" and front["license"] == "mit"
    assert front["pipeline_tag"] == "unconditional-image-generation"
    assert {"gankit", "gan", "generate", "mlp", "onnx"} <= set(front["tags"])
    # every evaluation metrics.jsonl holds, at the precision the card prints
    want = [(r["step"], k, v) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("eval") for k, v in scores(r).items()]
    got = card_metrics(card)
    assert [(s, k) for s, k, _ in got] == [(s, k) for s, k, _ in want] == [(2, "fid"), (4, "fid")]
    for (_, _, g), (_, _, w) in zip(got, want):
        assert g == pytest.approx(w, rel=1e-5)
    assert '"feature_net": "mnist-cnn"' in card and '"n": 64' in card  # the protocol beside them
    assert "- steps: 4 at batch 8 (32 examples seen)" in card and "- source: `fake:1x8x8:64`" in card
    assert "content hash: not recorded by the run" in card  # a fake source has none: nothing invented

    side = json.loads((out / "config.json").read_text())
    assert side["format"] == "gankit-generator" and side["config"]["model"]["g_hidden"] == [16]

    run, loaded = gankit.load(run_dir), load_exported(out)
    assert torch.equal(loaded.sample(5, seed=3), run.sample(5, seed=3))
    assert torch.equal(gankit.load(out).sample(2, seed=1), run.sample(2, seed=1))  # gankit.load reads the folder

    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    z = run.latents(6, seed=0)
    x = sess.run(None, {"z": z.numpy()})[0]
    got_img = torch.from_numpy(((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8))
    assert (got_img.int() - run.generate(z).int()).abs().max() <= 1


def test_file_form_with_onnx_writes_it_beside(run_dir, tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    assert main(["export", str(run_dir), "--out", str(out), "--onnx"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.onnx", "g.safetensors"]
    assert f"onnx:    {tmp_path / 'g.onnx'}" in capsys.readouterr().out


def test_refusals_leave_nothing(run_dir, tmp_path, monkeypatch, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("mine")
    with pytest.raises(GankitError, match=r"taken: exists and is not an empty folder"):
        export_folder(run_dir, taken)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "g.safetensors"), "--license", "mit"]) == 2
    assert "--license: the model card comes with the folder form" in capsys.readouterr().err

    import gankit.export_onnx as eo

    real = eo.check

    def mismatch(graph, data, name):
        with torch.no_grad():
            next(graph.module.parameters()).add_(0.1)  # PyTorch's weights no longer the graph's
        return real(graph, data, name)

    monkeypatch.setattr(eo, "check", mismatch)
    with pytest.raises(GankitError, match=r"does not match PyTorch: .*; nothing written$"):
        export_folder(run_dir, tmp_path / "new", onnx=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no folder, no .partial one


def test_card_reads_what_the_run_recorded(run_dir, tmp_path):
    assert [r["step"] for r in eval_rows(run_dir, 4)] == [2, 4] and [r["step"] for r in eval_rows(run_dir, 3)] == [2]
    assert training_time(run_dir, 4) is not None and training_time(run_dir, 3) is None  # the call reached step 4
    assert scores({"step": 1, "eval": True, "psnr": 20.5, "held": {"ssim": 0.5, "n": 10}, "protocol": {"n": 3}}) == \
        {"psnr": 20.5, "held.ssim": 0.5, "held.n": 10}
    out = export_folder(run_dir / "checkpoints" / "step_00000002.pt", tmp_path / "at2", log=lambda s: None)
    card = (out / "README.md").read_text()
    assert card_metrics(card) == [(2, "fid", pytest.approx(eval_rows(run_dir, 2)[0]["fid"], rel=1e-5))]
    assert "training time: not recorded" in card and front_matter(card)["license"] == "unknown"


def test_cli_onnx_alone(run_dir, tmp_path, capsys):
    out = tmp_path / "g.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]
    assert f"onnx:    {out}" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["z"] and sess.get_outputs()[0].shape == ["batch", 1, 8, 8]


@pytest.mark.slow
def test_an_inpainting_run_exports_a_card_and_a_graph_that_repairs_like_it(tmp_path):
    """A task scored on held-out data: nested score names in the card, the image-to-image tag,
    and the graph repairs a whole scan (any size) as `gankit repair` does."""
    from PIL import Image

    from gankit.tasks.inpaint.infer import repair_file

    g = np.random.default_rng(1)
    for split in ("train", "test"):
        (tmp_path / "scans" / split).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(g.integers(0, 256, (40, 48), dtype=np.uint8)).save(tmp_path / "scans" / split / f"s{i}.png")
    cfg = gankit.load_config("inpaint", overrides=[
        f"data.source={tmp_path / 'scans'}", "inpaint.patch=16", "train.steps=2", "eval.every=2", "eval.n=8",
        "model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu",
        "inpaint.grid_examples=2"])
    run = gankit.train(cfg, str(tmp_path / "run"))
    out = tmp_path / "export"
    assert main(["export", str(run.dir), "--out", str(out), "--onnx"]) == 0
    card = (out / "README.md").read_text()
    assert front_matter(card)["pipeline_tag"] == "image-to-image"
    want = [(r["step"], k, v) for r in eval_rows(run.dir, 2) for k, v in scores(r).items()]
    got = card_metrics(card)
    assert len(got) == len(want) > 3 and [k for _, k, _ in got] == [k for _, k, _ in want]
    assert all(g_ == pytest.approx(w, rel=1e-5, abs=1e-9) for (_, _, g_), (_, _, w) in zip(got, want))

    y, m, _ = repair_file(run, tmp_path / "scans" / "test" / "s0.png", box=(3, 5, 10, 12))
    x = torch.from_numpy(np.array(Image.open(tmp_path / "scans" / "test" / "s0.png")))[None, None]
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    o = sess.run(None, {"image": (x.float() / 127.5 - 1).numpy(), "mask": m[None].float().numpy()})[0]
    got_img = torch.from_numpy(((o + 1) * 127.5).round().clip(0, 255).astype(np.uint8))[0]
    assert got_img.shape == (1, 40, 48) and (got_img.int() - y.int()).abs().max() <= 1
    assert torch.equal(got_img[~m.expand_as(got_img)], y[~m.expand_as(y)])  # known pixels kept exactly
