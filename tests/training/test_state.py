"""The one checkpoint format: every key it holds is documented and written, schema-1 checkpoints
(written before the task layer, kept in tests/golden/v1-dcgan) are migrated on load and resume, a
newer schema is refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.training import checkpoint
from gankit.training.checkpoint import KEYS, OPTIONAL, SCHEMA, load_checkpoint, migrate

V1 = Path(__file__).parents[1] / "golden" / "v1-dcgan"


def test_schema_1_checkpoint_is_migrated_on_load():
    raw = torch.load(V1 / "checkpoints" / "last.pt", weights_only=True)
    assert "G" in raw and "schema" not in raw and raw["version"] == 1  # as written by gankit before tasks
    ck = load_checkpoint(V1 / "checkpoints" / "last.pt")
    assert ck["schema"] == SCHEMA and ck["task"] == "generate" and "version" not in ck
    assert set(ck["nets"]) == {"G", "D"} and set(ck["opts"]) == {"G", "D"}
    assert torch.equal(next(iter(ck["nets"]["G"].values())), next(iter(raw["G"].values())))
    assert set(ck["ema"]["G"]) == {"weights", "updates"} and ck["samplers"]["x"] == raw["sampler"]
    assert migrate(ck) is ck  # a current checkpoint is left as it is


def test_schema_2_with_its_old_format_version_loads(tmp_path):
    """Schema 2 used to carry a second number, the file format's "version" (always 1)."""
    ck = load_checkpoint(V1 / "checkpoints" / "last.pt")
    torch.save({**ck, "version": 1}, tmp_path / "old.pt")
    assert "version" not in load_checkpoint(tmp_path / "old.pt")


def test_schema_1_run_samples_and_resumes(tmp_path):
    run_dir = tmp_path / "v1"
    shutil.copytree(V1, run_dir)
    run = gankit.load(str(run_dir))
    assert run.step == 4 and run.ema and run.sample(2, seed=0).shape == (2, 1, 28, 28)
    cfg = run.config.replace(**{"train.steps": 6, "log.progress": False})
    resumed = gankit.train(cfg, str(run_dir), resume=True)
    ck = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert resumed.step == 6 and ck["schema"] == SCHEMA and ck["task"] == "generate" and "version" not in ck


def test_newer_schema_is_refused_in_one_line(tmp_path):
    ck = load_checkpoint(V1 / "checkpoints" / "last.pt")
    ck["schema"] = SCHEMA + 1
    with pytest.raises(GankitError, match=f"schema {SCHEMA + 1} was written by a newer gankit.*upgrade gankit"):
        migrate(ck, "x.pt")
    torch.save(ck, tmp_path / "new.pt")
    with pytest.raises(GankitError, match=f"new.pt: checkpoint schema {SCHEMA + 1} was written by a newer"):
        load_checkpoint(tmp_path / "new.pt")


def test_the_documented_keys_are_the_keys_written(tmp_path):
    """Every key a trained run writes is in KEYS and in the module's documented list, and every
    documented key is written (`best` once an evaluation improved)."""
    documented = re.findall(r"^    (\w+) ", checkpoint.__doc__, flags=re.M)
    assert documented == list(KEYS)
    cfg = gankit.load_config("seed-mlp", overrides=[
        "train.batch=8", "train.steps=2", "eval.every=2", "eval.n=64", "log.progress=false", "device=cpu"])
    run = gankit.train(cfg, str(tmp_path / "r"))
    written = torch.load(run.dir / "checkpoints" / "last.pt", weights_only=True)
    assert set(written) == set(KEYS), (set(written) ^ set(KEYS))
    assert set(OPTIONAL) <= set(KEYS)


def test_state_dict_holds_every_moving_part(tmp_path):
    cfg = gankit.load_config("dcgan", overrides=[
        "data.source=fake:1x28x28:32", "model.g_width=4", "model.d_width=4", "train.batch=8", "train.steps=2",
        "train.ema=true", "train.lr_schedule=linear", "log.progress=false", "device=cpu"])
    run = gankit.train(cfg, str(tmp_path / "r"))
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert set(ck) == set(KEYS) - set(OPTIONAL)  # no evaluation: no best
    assert set(ck["scheds"]) == {"G", "D"} and ck["ema"]["G"]["updates"] == 2 and "z" in ck["rng"]
