"""Gradient accumulation (train.batch_gpu): an update over micro-batches equals the update over
the whole batch for networks without batch statistics, its randomness does not depend on the
split, the networks only ever see micro-batches, and what cannot accumulate is refused in one line.

The equality runs compare two engines built from the same seed, batch 32 at once and as 4
micro-batches of 8, in float64 (as tests/test_stored_values.py: rounding then stays far below what
a wrong weight or a missing term moves). Adam hides a gradient's overall scale (its update is
m / sqrt(v)), so the gradients left in .grad by each network's last update are compared too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import gankit
from gankit.augment import AdaState
from gankit.cli import main
from gankit.config import load_config
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.run import Run
from gankit.training.engine import Engine, micro_batch

BASE = ["data.source=fake:1x28x28:64", "data.resolution=null", "model.z_dim=8", "train.batch=32", "seed=0",
        "log.progress=false", "device=cpu", "train.precision=fp32"]
SG2 = ["model.g_width=4", "model.d_width=4", "model.w_dim=8", "model.mapping_layers=2", "train.ema=false"]
R3 = ["model.g_width=4", "model.d_width=4", "model.group=4", "train.ema=false"]
# (preset, overrides, steps): the penalties each case carries on its steps
CASES = {
    # path length on every G step (lazy weight x1), lazy R1 every other D step, style mixing, noise inputs
    "stylegan2-pl-r1": ("stylegan2", SG2 + ["reg.pl_every=1", "reg.r1_every=2"], 3),
    # RpGAN with R1 and R2 on every step (the preset's)
    "r3gan-r1-r2": ("r3gan", R3, 2),
    # WGAN-GP, two critic updates per step
    "r3gan-wgan-gp": ("r3gan", R3 + ["train.loss=wasserstein", "reg.r1=0", "reg.r2=0", "reg.gp=10",
                                     "train.n_critic=2"], 2),
    # G's update on fresh latents: regenerated per micro-batch (and w_avg moved once for them)
    "stylegan2-fresh": ("stylegan2", SG2 + ["train.reuse_fakes=false", "reg.pl_every=2", "reg.r1_every=1"], 2),
}
RTOL, ATOL = 1e-7, 1e-10


def _engine(preset: str, sets: list[str], mode: str = "eager") -> Engine:
    cfg = load_config(preset, overrides=BASE + sets)
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, torch.device("cpu"))
    return Engine.build(cfg, data, torch.device("cpu"), mode=mode)


def _snapshot(e: Engine) -> dict[str, torch.Tensor]:
    """Every network's state (parameters and buffers: stylegan2's w_avg too), the gradients of each
    network's last update, task state (path-length mean) and the summed logged scalars."""
    st = e.st
    out = {f"{n}.{k}": v.detach().clone() for n, m in st.nets.items() for k, v in m.state_dict().items()
           if v.is_floating_point()}
    out.update({f"{n}.{k}.grad": p.grad.clone() for n, m in st.nets.items() for k, p in m.named_parameters()
                if p.grad is not None})
    if "pl" in st.extra:
        out["pl.a"] = st.extra["pl"].a.clone()
    out["acc"] = st.acc.clone()
    return out


def _compare(whole: dict, split: dict, keys=None) -> None:
    assert whole.keys() == split.keys()
    for k in keys or whole:
        torch.testing.assert_close(split[k], whole[k], rtol=RTOL, atol=ATOL, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_micro_batches_update_as_the_whole_batch(case, float64):
    """4 x 8 == 1 x 32: after one step and after a few, parameters, buffers, the last update's
    gradients, the path-length mean and the logged scalars agree."""
    preset, sets, steps = CASES[case]
    runs = []
    for extra in ([], ["train.batch_gpu=8"]):
        e = _engine(preset, sets + extra)
        assert e.st.batch_gpu == (8 if extra else None)
        e.step(0)
        first = _snapshot(e)
        for t in range(1, steps):
            e.step(t)
        runs.append((first, _snapshot(e)))
    (whole1, whole), (split1, split) = runs
    _compare(whole1, split1)
    _compare(whole, split)
    start = _snapshot(_engine(preset, sets))  # the comparison is not between two untouched states
    assert max((whole[k] - start[k]).abs().max().item() for k in start if not k.endswith(".grad")) > 1e-4


def test_a_wrong_share_is_seen(monkeypatch, float64):
    """The comparison can fail: micro-batch losses backpropagated unscaled (each as if it were the
    whole batch's mean) give 4x the gradients, which it catches."""
    preset, sets, _ = CASES["r3gan-wgan-gp"]
    e = _engine(preset, sets)
    e.step(0)
    whole = _snapshot(e)
    e = _engine(preset, sets + ["train.batch_gpu=8"])
    backward = torch.Tensor.backward
    monkeypatch.setattr(torch.Tensor, "backward", lambda self, *a, **k: backward(self * 4, *a, **k))
    e.step(0)
    monkeypatch.undo()
    split = _snapshot(e)
    grads = [k for k in whole if k.endswith(".grad")]
    with pytest.raises(AssertionError, match="grad"):
        _compare(whole, split, grads)


def test_networks_see_micro_batches_only():
    """Peak memory follows train.batch_gpu: every forward of G and D (fakes, their regeneration,
    penalties, path length) takes at most one micro-batch."""
    preset, sets, _ = CASES["stylegan2-pl-r1"]
    e = _engine(preset, sets + ["train.batch_gpu=8", "reg.r1_every=1"])
    seen = {"G": [], "D": []}
    G, D = e.st.nets["G"], e.st.nets["D"]
    G.convs[0].register_forward_pre_hook(lambda m, a: seen["G"].append(a[0].shape[0]))
    D.body.register_forward_pre_hook(lambda m, a: seen["D"].append(a[0].shape[0]))
    e.step(0)
    assert max(seen["G"]) == 8 and max(seen["D"]) == 8  # stylegan2's D judges reals and fakes apart
    # D phase: 4 fakes; G phase: 2 path-length chunks x 2 passes, 4 regenerated fakes
    assert len(seen["G"]) == 4 + 4 + 4
    whole = _engine(preset, sets + ["reg.r1_every=1"])
    seen = {"G": [], "D": []}
    whole.st.nets["G"].convs[0].register_forward_pre_hook(lambda m, a: seen["G"].append(a[0].shape[0]))
    whole.step(0)
    assert max(seen["G"]) == 32  # the same hook sees the whole batch without accumulation


def test_ada_sees_the_whole_batch_once_per_update(monkeypatch):
    """ADA's r_t: one update of p per D update, over the whole batch's real logits."""
    calls = []
    real = AdaState.update

    def update(self, logits):
        calls.append(tuple(logits.shape))
        return real(self, logits)

    monkeypatch.setattr(AdaState, "update", update)
    preset, sets, _ = CASES["stylegan2-pl-r1"]
    e = _engine(preset, sets + ["train.batch_gpu=8", "reg.ada=true", "train.n_critic=2"])
    e.step(0)
    assert calls == [(32,), (32,)]


def test_static_step_equals_eager_and_reads_nothing_back(monkeypatch, no_host_reads):
    """The micro-batch loop is static: the graph-shaped step (what a CUDA graph captures) follows
    the eager one bitwise and reads nothing back to the host."""
    preset, sets, _ = CASES["stylegan2-pl-r1"]
    sets = sets + ["train.batch_gpu=8"]
    eager = _engine(preset, sets, "eager")
    for t in range(2):
        eager.step(t)
    static = _engine(preset, sets, "static")
    for t in range(2):
        static.step(t)
    a, b = _snapshot(eager), _snapshot(static)
    assert all(torch.equal(a[k], b[k]) for k in a)

    def refuse(*args, **kw):
        raise AssertionError("host read inside the graph step")

    for name in ("tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    with no_host_reads():
        static.step(2)


# -- refusals -----------------------------------------------------------------------------------
def test_a_share_that_micro_batches_do_not_divide_is_refused():
    cfg = load_config("stylegan2", overrides=BASE + ["train.batch=24", "train.batch_gpu=8"])
    assert micro_batch(cfg, 1) == 8 and micro_batch(cfg, 3) is None  # 8 per process: no accumulation
    with pytest.raises(GankitError) as err:
        micro_batch(cfg, 2)  # 12 per process
    msg = str(err.value)
    assert "\n" not in msg and "train.batch_gpu = 8" in msg and "2 processes" in msg and "divides 12" in msg
    with pytest.raises(GankitError, match="train.batch_gpu"):
        load_config("stylegan2", overrides=BASE + ["train.batch=24", "train.batch_gpu=7"])  # the config's own check


def test_nproc_refuses_a_share_micro_batches_do_not_divide_before_launch(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--preset", "stylegan2", "--nproc", "2", "--data", "fake:1x28x28:64", "--set",
                 "train.batch=24", "--set", "train.batch_gpu=8", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "each of the 2 processes trains on 12 of train.batch = 24" in err and "processes:" not in err
    assert not out.exists()


def test_a_task_without_accumulation_refuses_it(tmp_path, capsys):
    """A task whose phases do not split the batch refuses train.batch_gpu below it, in one line,
    and leaves no run directory behind."""
    sets = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu"]
    assert micro_batch(load_config("denoise", overrides=sets + ["train.batch_gpu=4"]), 1) is None
    out = tmp_path / "run"
    assert main(["train", "--preset", "denoise", *[a for s in sets for a in ("--set", s)], "--set",
                 "train.batch_gpu=2", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # what it would train, then the one-line refusal
    assert "train.batch_gpu = 2 < train.batch = 4: the denoise task does not implement gradient accumulation" \
        in err[-1] and not any("Traceback" in line for line in err)
    assert not out.exists()


# -- end to end --------------------------------------------------------------------------------
def test_train_with_batch_gpu_end_to_end(tmp_path):
    """`gankit train ... --set train.batch_gpu=...` through the API: it trains, says so in
    train.log, and metrics.jsonl counts steps of the global batch (the epoch moves as without
    accumulation)."""
    sets = BASE + SG2 + ["train.batch=16", "train.steps=4", "log.every=2", "log.grid_every=1000"]
    rows = {}
    for name, extra in (("whole", []), ("split", ["train.batch_gpu=4"])):
        gankit.train(load_config("stylegan2", overrides=sets + extra), str(tmp_path / name))
        rows[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows["split"]] == [2, 4]
    assert [r["epoch"] for r in rows["split"]] == [r["epoch"] for r in rows["whole"]]
    assert all(r["steps_per_s"] > 0 for r in rows["split"])
    log = (tmp_path / "split" / "train.log").read_text()
    assert "gradient accumulation: each update sums the gradients of 4 micro-batches of train.batch_gpu = 4" in log
    assert "BatchNorm" not in log


def test_resume_with_accumulation_is_exact(tmp_path):
    """Accumulation keeps no state of its own: 2 steps, then a resume to 4, equal the 4 steps
    left alone, bitwise (path length, lazy R1, style mixing and noise inputs on the way)."""
    sets = BASE + SG2 + ["train.batch=16", "train.batch_gpu=4", "reg.pl_every=2", "reg.r1_every=2",
                         "log.every=2", "log.grid_every=1000"]
    gankit.train(load_config("stylegan2", overrides=sets + ["train.steps=4"]), str(tmp_path / "whole"))
    gankit.train(load_config("stylegan2", overrides=sets + ["train.steps=2"]), str(tmp_path / "part"))
    gankit.train(load_config("stylegan2", overrides=sets + ["train.steps=4"]), str(tmp_path / "part"), resume=True)
    a, b = (torch.load(tmp_path / n / "checkpoints" / "last.pt", weights_only=True) for n in ("whole", "part"))
    assert a["step"] == b["step"] == 4
    for net in ("G", "D"):
        assert all(torch.equal(a["nets"][net][k], b["nets"][net][k]) for k in a["nets"][net])


def test_batchnorm_under_accumulation_is_a_warning(tmp_path):
    sets = ["data.source=fake:1x28x28:64", "model.g_width=8", "model.d_width=8", "train.batch=8",
            "train.batch_gpu=4", "train.steps=1", "log.progress=false", "device=cpu", "log.grid_every=1000"]
    gankit.train(load_config("dcgan", overrides=sets), str(tmp_path / "run"))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "warning: D and G use BatchNorm, whose statistics are per micro-batch of 4" in log


# -- data-parallel ------------------------------------------------------------------------------
@pytest.mark.slow  # four 2-process launches: about 20 s on an idle 2-core machine
def test_two_processes_accumulating_follow_two_without(tmp_path):
    """2 processes x 2 micro-batches of 4 (DistributedDataParallel, no_sync for the first) follow
    2 processes x 8 at once, path length and lazy R1 included: the path-length backward comes
    before the micro-batch whose backward DDP reduces, so it is averaged over the ranks too (else
    rank 0 would drift off). (Not one process: each rank draws its own noise inputs.)"""
    sets = ["--preset", "stylegan2", "--data", "fake:1x28x28:64", "--device", "cpu", "--no-progress", "--nproc", "2"]
    for s in BASE[2:] + SG2 + ["train.batch=16", "reg.pl_every=1", "reg.r1_every=2", "log.every=1",
                               "log.grid_every=1000"]:
        sets += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, extra in (("whole", []), ("split", ["--set", "train.batch_gpu=4"])):
        p = subprocess.run([sys.executable, "-m", "gankit", "train", *sets, "--steps", "4", "--out",
                            str(tmp_path / name), *extra], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
    log = (tmp_path / "split" / "train.log").read_text()
    assert "2 micro-batches of train.batch_gpu = 4 of the 8 each of 2 processes trains on" in log
    rows = {n: [json.loads(x) for x in (tmp_path / n / "metrics.jsonl").read_text().splitlines()]
            for n in ("whole", "split")}
    for key in ("loss_d", "loss_g", "pl", "pl_mean"):
        torch.testing.assert_close(torch.tensor([r[key] for r in rows["split"]]),
                                   torch.tensor([r[key] for r in rows["whole"]]), atol=2e-5, rtol=1e-4)
    weights = {n: torch.cat([p.detach().flatten() for p in Run.load(tmp_path / n, ema=False).G.parameters()])
               for n in ("whole", "split")}
    torch.testing.assert_close(weights["split"], weights["whole"], atol=1e-5, rtol=0)
