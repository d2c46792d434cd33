import json
import struct

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.export import export_generator, load_exported

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "train.steps=2", "log.progress=false", "device=cpu"]
# dcgan / cgan nets only build for 28, 32 or 64 pixel squares
TINY_CONV = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.z_dim=4",
             "train.batch=8", "train.steps=2", "log.progress=false", "device=cpu"]


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp") / "run"
    gankit.train(gankit.load_config("seed-mlp", overrides=TINY), out)
    return out


def test_exported_generator_samples_exactly_like_the_run(mlp_run, tmp_path):
    weights, sidecar = export_generator(mlp_run, tmp_path / "g.safetensors")
    assert (weights, sidecar) == (tmp_path / "g.safetensors", tmp_path / "g.json")
    run = load_exported(weights)
    assert torch.equal(run.sample(5, seed=1), gankit.load(mlp_run).sample(5, seed=1))
    assert not run.G.training and run.step == 2 and run.ema is False  # seed-mlp keeps no EMA
    meta = json.loads(sidecar.read_text())
    assert meta["format"] == "gankit-generator" and meta["version"] == 2
    assert meta["task"] == "generate" and meta["nets"] == ["G"]
    assert meta["config"]["model"]["g_hidden"] == [16] and meta["data"]["shape"] == [1, 8, 8]
    assert meta["step"] == 2 and meta["gankit_version"] == gankit.__version__ and len(meta["sha256"]) == 64


def test_a_checkpoint_file_exports_too(mlp_run, tmp_path):
    weights, _ = export_generator(mlp_run / "checkpoints" / "last.pt", tmp_path / "sub" / "g.safetensors")
    assert torch.equal(load_exported(weights).sample(3, seed=0), gankit.load(mlp_run).sample(3, seed=0))


def test_weights_file_is_safetensors_not_a_pickle(mlp_run, tmp_path):
    weights, _ = export_generator(mlp_run, tmp_path / "g.safetensors")
    raw = weights.read_bytes()
    assert raw[:2] != b"PK"  # not a torch.save zip (pickle inside)
    (n,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 little-endian header size, then a JSON header
    header = json.loads(raw[8:8 + n])
    G_keys = {f"G.{k}" for k in gankit.load(mlp_run).G.state_dict()}  # one prefix per exported network
    assert set(header) - {"__metadata__"} == G_keys


def test_a_version_1_export_still_loads(mlp_run, tmp_path):
    """Written before tasks: G's keys without a prefix, no task or nets in the sidecar."""
    from safetensors.torch import load_file, save_file

    from gankit.util import sha256_file

    weights, sidecar = export_generator(mlp_run, tmp_path / "g.safetensors")
    old = tmp_path / "old.safetensors"
    save_file({k[2:]: v for k, v in load_file(str(weights)).items()}, str(old), metadata={"format": "gankit-generator"})
    meta = json.loads(sidecar.read_text())
    meta.update(version=1, sha256=sha256_file(old))
    del meta["task"], meta["nets"]
    old.with_suffix(".json").write_text(json.dumps(meta))
    assert torch.equal(load_exported(old).sample(3, seed=0), gankit.load(mlp_run).sample(3, seed=0))


def test_tampered_weights_are_refused(mlp_run, tmp_path):
    weights, sidecar = export_generator(mlp_run, tmp_path / "g.safetensors")
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF  # one bit of one weight
    weights.write_bytes(bytes(raw))
    with pytest.raises(GankitError, match=r"does not match the SHA-256 recorded in .*g\.json; "
                                          r"the file is corrupt or was changed"):
        load_exported(weights)


def test_missing_or_invalid_sidecar_is_refused(mlp_run, tmp_path):
    weights, sidecar = export_generator(mlp_run, tmp_path / "g.safetensors")
    sidecar.write_text("{oops")
    with pytest.raises(GankitError, match=r"g\.json: not valid JSON"):
        load_exported(weights)
    sidecar.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(GankitError, match=r"g\.json: not an exported gankit generator"):
        load_exported(weights)
    sidecar.unlink()
    with pytest.raises(GankitError, match=r"g\.json is missing"):
        load_exported(weights)
    with pytest.raises(GankitError, match="does not exist"):
        load_exported(tmp_path / "nothing.safetensors")


def test_out_must_be_a_safetensors_path(mlp_run, tmp_path):
    with pytest.raises(GankitError, match=r"\.safetensors"):
        export_generator(mlp_run, tmp_path / "g.pt")
    assert not list(tmp_path.iterdir())


def test_ema_run_exports_ema_weights_unless_asked_for_raw(tmp_path):
    out = tmp_path / "run"
    gankit.train(gankit.load_config("dcgan", overrides=[*TINY_CONV, "train.ema=true"]), out)
    ema_w, _ = export_generator(out, tmp_path / "ema.safetensors")
    raw_w, _ = export_generator(out, tmp_path / "raw.safetensors", ema=False)
    ema, raw = load_exported(ema_w), load_exported(raw_w)
    assert ema.ema is True and raw.ema is False
    assert json.loads((tmp_path / "ema.json").read_text())["ema"] is True
    x_ema, x_raw = ema.sample(4, seed=0), raw.sample(4, seed=0)
    assert x_ema.shape == (4, 1, 28, 28)
    assert not torch.equal(x_ema, x_raw)
    assert torch.equal(x_ema, gankit.Run.load(out).sample(4, seed=0))
    assert torch.equal(x_raw, gankit.Run.load(out, ema=False).sample(4, seed=0))


def test_conditional_run_samples_by_label(tmp_path):
    out = tmp_path / "run"
    gankit.train(gankit.load_config("cgan", overrides=TINY_CONV), out)
    run = load_exported(export_generator(out, tmp_path / "c.safetensors")[0])
    assert run.conditional and run.n_classes == 10
    x = run.sample(4, label=3, seed=0)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(x, gankit.Run.load(out).sample(4, label=3, seed=0))
    with pytest.raises(GankitError, match="class 10 is out of range"):
        run.sample(1, label=10)
