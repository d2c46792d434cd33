"""ADA in the generation task on tiny CPU runs: p follows the overfitting heuristic in the step
(up for a D that tells reals from fakes, down for one that cannot), resume is exact with p in
the checkpoint, the graph-shaped step equals the eager one, metrics.jsonl shows p and r_t, and
ADA with DiffAugment is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks import get_task
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["data.source=fake:1x28x28:32", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch=8",
        "train.ema=false", "log.progress=false", "log.grid_every=1000", "log.grid_n=4", "log.every=1", "device=cpu"]
# p moves 8 / 200 = 0.04 per step
ADA = ["reg.ada=true", "reg.ada_kimg=0.2"]


def _cfg(*more):
    return load_config("dcgan", overrides=[*TINY, *ADA, *more])


def _rows(run):
    return [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]


def _check_rule(rows, p0, target, step=0.04, top=1.0):
    """Every logged step (log.every=1, one D update each) moved p by sign(r_t - target) * step."""
    p = p0
    for r in rows:
        p = min(max(p + step * ((r["ada_rt"] > target) - (r["ada_rt"] < target)), 0.0), top)
        assert r["ada_p"] == pytest.approx(p, abs=1e-5), r
    return p


def test_p_rises_for_an_overfitting_d_and_falls_for_one_that_cannot_tell(tmp_path):
    # D learns fast on 32 noise images against a G that barely moves: reals get positive logits.
    over = gankit.train(_cfg("train.steps=20", "train.lr_d=2e-3", "train.lr_g=1e-6"), str(tmp_path / "over"))
    rows = _rows(over)
    assert _check_rule(rows, 0.0, 0.6) >= 0.2 and rows[-1]["ada_p"] > 0
    # D barely moves from its initialisation: r_t stays below a target of 0.99, p falls from 0.5.
    blind = gankit.train(_cfg("train.steps=10", "train.lr_d=1e-7", "reg.ada_p=0.5", "reg.ada_target=0.99"),
                         str(tmp_path / "blind"))
    assert _check_rule(_rows(blind), 0.5, 0.99) <= 0.2


def test_resume_is_exact_with_ada(tmp_path):
    sets = ("train.lr_d=2e-3",)
    whole = gankit.train(_cfg("train.steps=4", *sets), str(tmp_path / "whole"))
    gankit.train(_cfg("train.steps=2", *sets), str(tmp_path / "part"))
    resumed = gankit.train(_cfg("train.steps=4", *sets), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    assert all(torch.equal(a["nets"][n][k], b["nets"][n][k]) for n in a["nets"] for k in a["nets"][n])
    assert a["extra"]["ada"]["p"].dtype == torch.float32 and a["extra"]["ada"]["p"].dim() == 0
    assert torch.equal(a["extra"]["ada"]["p"], b["extra"]["ada"]["p"]) and a["extra"]["ada"]["p"] > 0


@pytest.mark.parametrize("adaptive", [True, False])
def test_graph_shaped_step_equals_eager_with_ada(adaptive):
    task = get_task("generate")
    cfg = _cfg("train.lr_d=2e-3", f"reg.ada={str(adaptive).lower()}", "reg.ada_p=0.3", "model.d_batchnorm=false",
               "reg.r1=1", "reg.r1_every=2")  # R1 on augmented reals too
    runs = []
    for mode in ("eager", "static"):
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        for t in range(3):
            e.step(t)
        w = torch.cat([p.detach().flatten() for m in e.st.nets.values() for p in m.parameters()])
        runs.append((w, e.st.acc.clone(), e.st.extra["ada"].p.clone()))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert (runs[0][2] != 0.3) == adaptive  # fixed p stays put


def test_metrics_show_p_and_rt_only_with_ada(tmp_path):
    on = _rows(gankit.train(_cfg("train.steps=2"), str(tmp_path / "on")))
    assert all({"ada_p", "ada_rt"} <= r.keys() and -1 <= r["ada_rt"] <= 1 for r in on)
    fixed = _rows(gankit.train(_cfg("train.steps=1", "reg.ada=false", "reg.ada_p=0.25"), str(tmp_path / "fixed")))
    assert fixed[0]["ada_p"] == 0.25
    off = _rows(gankit.train(_cfg("train.steps=1", "reg.ada=false"), str(tmp_path / "off")))
    assert not {"ada_p", "ada_rt"} & off[0].keys()


@pytest.mark.parametrize("sets, msg", [
    (["reg.ada=true", "reg.diffaug=color"], "use one augmentation: reg.diffaug or reg.ada"),
    (["reg.ada_p=0.5", "reg.diffaug=color"], "use one augmentation: reg.diffaug or reg.ada"),
    (["reg.ada_p=0.9", "reg.ada_max=0.8"], "reg.ada_p = 0.9 is above reg.ada_max = 0.8"),
    (["reg.ada_target=1"], "reg.ada_target = 1.0 is out of range"),
    (["reg.ada_kimg=0"], "reg.ada_kimg = 0.0 is out of range"),
    (["reg.ada_max=1.5"], "reg.ada_max = 1.5 is out of range"),
])
def test_bad_ada_settings_are_refused_in_one_line(sets, msg):
    with pytest.raises(GankitError, match=msg) as e:
        load_config("dcgan", overrides=sets)
    assert "\n" not in str(e.value)


def test_ada_on_points_is_refused(tmp_path):
    cfg = load_config("toy-mlp", overrides=["train.steps=1", "log.progress=false", "reg.ada=true"])
    with pytest.raises(GankitError, match="augment images"):
        gankit.train(cfg, str(tmp_path / "toy"))
