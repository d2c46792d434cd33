"""A forced resume with a changed learning rate or betas: the run continues at the new settings
(the checkpoint's optimiser state would otherwise keep the old ones silently), at the schedule's
current multiplier, and says so; a plain resume changes nothing."""

import json
import math

import pytest

import gankit
from gankit.api import resume
from gankit.config import load_config

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "model.d_dropout=0", "train.batch=8", "log.progress=false", "device=cpu",
        "train.precision=fp32", "log.every=1", "train.ema=false"]


def _lrs(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["lr_g"], r["lr_d"]) for r in rows if "lr_g" in r}


def test_a_forced_resume_applies_the_new_rates_and_betas(tmp_path, capsys):
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=4", "train.lr_g=1e-3", "train.lr_d=1e-3"])
    run = gankit.train(cfg, tmp_path / "run")
    assert _lrs(run.dir)[4] == (1e-3, 1e-3)
    capsys.readouterr()
    done = resume(run.dir, ["train.steps=6", "train.lr_g=2e-4", "train.betas=[0.0,0.99]"], force=True)
    err = capsys.readouterr().err
    assert "optimiser G now uses betas (0.5, 0.999) -> (0.0, 0.99); lr 0.001 -> 0.0002" in err
    assert "optimiser D now uses betas (0.5, 0.999) -> (0.0, 0.99)" in err and "optimiser D now uses lr" not in err
    lrs = _lrs(done.dir)
    assert lrs[5] == lrs[6] == (2e-4, 1e-3)


@pytest.mark.slow
def test_a_forced_resume_under_a_schedule_starts_at_its_multiplier(tmp_path):
    # cosine: the new base rate times the multiplier at the resumed step (8 of 12: 0.25)
    cos = load_config("seed-mlp", overrides=[*TINY, "train.steps=8", "train.lr_schedule=cosine"])
    run = gankit.train(cos, tmp_path / "cos")
    done = resume(run.dir, ["train.steps=12", "train.lr_g=4e-3"], force=True)
    lr_g = _lrs(done.dir)[9][0]
    assert abs(lr_g - 4e-3 * 0.5 * (1 + math.cos(math.pi * 9 / 12))) < 1e-12


@pytest.mark.slow
def test_a_plain_resume_says_nothing_and_keeps_the_rates(tmp_path, capsys):
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=2"])
    run = gankit.train(cfg, tmp_path / "run")
    capsys.readouterr()
    done = resume(run.dir, ["train.steps=4"])
    assert "now uses" not in capsys.readouterr().err
    assert len(set(_lrs(done.dir).values())) == 1
