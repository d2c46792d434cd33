"""The one checkpoint schema: what a checkpoint holds, schema-1 checkpoints (written before the
task layer, kept in tests/golden/v1-dcgan) load and resume, a newer schema is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint
from gankit.training.state import SCHEMA, upgrade

V1 = Path(__file__).parents[1] / "golden" / "v1-dcgan"


def test_schema_1_checkpoint_is_upgraded():
    ck = load_checkpoint(V1 / "checkpoints" / "last.pt")
    assert "G" in ck and "schema" not in ck  # as written by gankit before tasks
    new = upgrade(ck)
    assert new["schema"] == SCHEMA and new["task"] == "generate"
    assert set(new["nets"]) == {"G", "D"} and set(new["opts"]) == {"G", "D"}
    assert torch.equal(next(iter(new["nets"]["G"].values())), next(iter(ck["G"].values())))
    assert set(new["ema"]["G"]) == {"weights", "updates"} and new["samplers"]["x"] == ck["sampler"]


def test_schema_1_run_samples_and_resumes(tmp_path):
    run_dir = tmp_path / "v1"
    shutil.copytree(V1, run_dir)
    run = gankit.load(str(run_dir))
    assert run.step == 4 and run.ema and run.sample(2, seed=0).shape == (2, 1, 28, 28)
    cfg = run.config.replace(**{"train.steps": 6, "log.progress": False})
    resumed = gankit.train(cfg, str(run_dir), resume=True)
    ck = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert resumed.step == 6 and ck["schema"] == SCHEMA and ck["task"] == "generate"


def test_newer_schema_is_refused_in_one_line():
    ck = upgrade(load_checkpoint(V1 / "checkpoints" / "last.pt"))
    ck["schema"] = SCHEMA + 1
    with pytest.raises(GankitError, match=f"schema {SCHEMA + 1} was written by a newer gankit.*upgrade gankit"):
        upgrade(ck, "x.pt")


def test_state_dict_holds_every_moving_part(tmp_path):
    cfg = gankit.load_config("dcgan", overrides=[
        "data.source=fake:1x28x28:32", "model.g_width=4", "model.d_width=4", "train.batch=8", "train.steps=2",
        "train.ema=true", "train.lr_schedule=linear", "log.progress=false", "device=cpu"])
    run = gankit.train(cfg, str(tmp_path / "r"))
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert {"schema", "task", "step", "config", "data", "nets", "opts", "scheds", "ema", "samplers", "extra",
            "rng", "rng_ranks", "versions"} <= set(ck)
    assert set(ck["scheds"]) == {"G", "D"} and ck["ema"]["G"]["updates"] == 2 and "z" in ck["rng"]
