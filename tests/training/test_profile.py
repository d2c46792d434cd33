"""`--profile N`: a PyTorch profiler trace of N steps after the warm-up, for training (every
task goes through the same loop) and for `gankit bench`; nothing when off."""

from __future__ import annotations

import json

import gankit
from gankit.cli import main
from gankit.config import load_config

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[8]", "model.d_hidden=[8]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "device=cpu", "log.grid_every=1000"]


def _ops(trace) -> set[str]:
    events = json.loads(trace.read_text())["traceEvents"]
    return {e.get("name", "") for e in events}


def test_train_writes_a_trace_and_the_top_operators(tmp_path, capsys):
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=9", "log.profile=3"]), str(tmp_path / "r"))
    traces = list((run.dir / "profile").glob("*.pt.trace.json"))
    assert len(traces) == 1
    ops = _ops(traces[0])
    assert "aten::addmm" in ops or "aten::mm" in ops  # the MLP's matrix products were recorded
    assert sum(1 for o in ops if o.startswith("ProfilerStep#")) == 3  # exactly the 3 profiled steps
    table = (run.dir / "profile" / "top_ops.txt").read_text()
    assert "Self CPU" in table and "aten::" in table
    assert "profile of 3 steps" in (run.dir / "train.log").read_text()
    assert "Self CPU" in capsys.readouterr().err


def test_profile_off_writes_nothing(tmp_path):
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=2"]), str(tmp_path / "r"))
    assert not (run.dir / "profile").exists()


def test_too_short_a_run_is_refused_in_one_line(tmp_path, capsys):
    argv = ["train", "--preset", "seed-mlp", "--steps", "4", "--profile", "3", "--out", str(tmp_path / "r"),
            *[a for s in TINY for a in ("--set", s)]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs 8 steps" in err[0] and not (tmp_path / "r").exists()


def test_a_translation_run_profiles_too(tmp_path):
    cfg = load_config("pix2pix", overrides=["model.g_width=4", "model.d_width=4", "train.batch=4", "train.steps=7",
                                            "log.progress=false", "device=cpu", "log.grid_every=1000",
                                            "translate.grid_examples=2", "log.profile=2"])
    run = gankit.train(cfg, str(tmp_path / "p"))
    assert "aten::convolution" in _ops(next((run.dir / "profile").glob("*.pt.trace.json")))


def test_bench_profile(tmp_path, capsys):
    assert main(["bench", "--preset", "seed-mlp", "--seconds", "0.2", "--rounds", "1", "--device", "cpu",
                 "--data", "fake:1x28x28:256", "--set", "model.g_hidden=[8]", "--set", "model.d_hidden=[8]",
                 "--set", "train.batch=16", "--profile", "2", "--profile-dir", str(tmp_path / "b"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["profile"]["steps"] == 2 and "Self CPU" in r["profile"]["table"]
    assert list((tmp_path / "b" / "profile").glob("*.pt.trace.json"))


def test_the_config_check_knows_the_warm_up():
    from gankit.training.profile import StepProfiler

    assert StepProfiler.needed(0) == 5  # the 5 of gankit.config's log.profile check
