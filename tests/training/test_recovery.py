"""Runs survive: signals, SIGKILL at random moments (some mid-write), locks, non-finite values."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.losses import LOSSES, GANLoss, g_nonsaturating
from gankit.training.checkpoint import CheckpointStore, load_checkpoint, sha256_file

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "log.every=1", "log.grid_every=1000",
        "device=cpu"]

# A trainer in a subprocess. SLOW_WRITE makes each checkpoint write take ~0.3 s (the bytes go out
# in pieces with pauses), so random kills land inside writes too; SLOW_STEP paces the steps.
TRAINER = textwrap.dedent("""
    import os, sys, time, io, torch
    real_save = torch.save
    def slow_save(obj, f, *a, **k):
        buf = io.BytesIO(); real_save(obj, buf, *a, **k); data = buf.getvalue()
        for i in range(0, len(data), max(1, len(data) // 6)):
            f.write(data[i:i + max(1, len(data) // 6)]); f.flush(); time.sleep(0.05)
    torch.save = slow_save
    import gankit.tasks.generate.task as gt
    real_g = gt.g_phase
    def paced(*a, **k):
        time.sleep(float(os.environ.get("SLOW_STEP", "0"))); return real_g(*a, **k)
    gt.g_phase = paced
    from gankit.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def trainer(out, steps, *extra, resume=False, slow_step=0.02):
    args = ["train", "--resume", str(out)] if resume else ["train", "--out", str(out)] + \
        [a for s in TINY for a in ("--set", s)]
    args += ["--steps", str(steps), "--set", "log.ckpt_every=3", *extra]
    env = dict(os.environ, SLOW_STEP=str(slow_step), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", TRAINER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_steps(out, n, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        rows = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
        if len(rows) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        time.sleep(0.05)
    raise AssertionError("trainer made no progress")


def check_no_corrupt_checkpoint(ckdir):
    manifest = json.loads((ckdir / "manifest.json").read_text())["checkpoints"] if (ckdir / "manifest.json").exists() else []
    for e in manifest:
        p = ckdir / e["file"]
        if p.exists():
            assert sha256_file(p) == e["sha256"], f"{p.name} does not match the manifest"
    for p in ckdir.glob("*.pt"):  # every visible checkpoint file is complete
        load_checkpoint(p)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_cleanly_with_a_checkpoint(tmp_path, sig):
    out = tmp_path / "r"
    p = trainer(out, 10_000)
    wait_for_steps(out, 5, p)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    assert f"stopped by {sig.name}" in stderr and f"gankit train --resume {out}" in stderr
    step = load_checkpoint(out / "checkpoints" / "last.pt")["step"]
    assert 5 <= step < 10_000
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["step"] == step  # logged up to where it stopped


def test_second_trainer_refused_and_stale_lock_taken_over(tmp_path):
    out = tmp_path / "r"
    p = trainer(out, 10_000)
    wait_for_steps(out, 4, p)  # past the first checkpoint (step 3)
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=10000"])
    with pytest.raises(GankitError, match="is in use by another trainer"):
        gankit.train(cfg, out, resume=True)
    p.kill()  # SIGKILL: the lock file stays behind, naming a dead process
    p.wait()
    assert (out / ".lock").exists()
    run = gankit.train(cfg.replace(**{"train.steps": 12, "log.ckpt_every": 3}), out, resume=True, force=True)
    assert run.step == 12 and not (out / ".lock").exists()


def test_sigkill_at_ten_random_moments(tmp_path):
    out, total = tmp_path / "r", 60
    rnd = random.Random(1234)
    p = trainer(out, total)
    for i in range(10):
        wait_for_steps(out, 1, p) if i == 0 else None
        time.sleep(rnd.uniform(0.2, 1.5))
        p.kill()
        p.wait()
        ckdir = out / "checkpoints"
        if ckdir.exists():
            check_no_corrupt_checkpoint(ckdir)
        if ckdir.exists() and CheckpointStore(ckdir).candidates():
            p = trainer(out, total, resume=True)
        else:  # killed before the first checkpoint: start again
            import shutil
            shutil.rmtree(out)
            p = trainer(out, total)
    stdout, stderr = p.communicate(timeout=300)
    if p.returncode != 0:
        raise AssertionError(stderr)
    check_no_corrupt_checkpoint(out / "checkpoints")
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == total


def _nan_after(calls_ok, stop_after=None):
    """A D loss that turns NaN after `calls_ok` calls (and finite again after `stop_after`)."""
    state = {"n": 0}
    real = LOSSES["ns"]

    def d(real_logits, fake_logits, real_target=1.0):
        state["n"] += 1
        loss = real.d(real_logits, fake_logits, real_target)
        bad = state["n"] > calls_ok and (stop_after is None or state["n"] <= stop_after)
        return loss * float("nan") if bad else loss

    return GANLoss(d, g_nonsaturating, bce=True)


def test_nonfinite_updates_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setitem(LOSSES, "ns", _nan_after(3, stop_after=5))  # D steps 4 and 5 are NaN
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=8"]), tmp_path / "r")
    rows = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["nonfinite"] >= 2 and "nonfinite" not in rows[2]
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ck["nets"]["D"].values() if v.is_floating_point())


def test_rollback_then_stop_when_it_keeps_diverging(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(LOSSES, "ns", _nan_after(4))  # NaN for ever after D step 4
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=50", "log.ckpt_every=2",
                                             "recover.patience=3", "recover.max_rollbacks=2"])
    with pytest.raises(GankitError, match="training diverged.*after 2 rollbacks"):
        gankit.train(cfg, tmp_path / "r")
    err = capsys.readouterr().err
    assert err.count("rolled back to step 4") == 2 and "x0.5" in err and "x0.25" in err
    ck = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["nets"]["G"].values())
    # train.log keeps the story for the report: both rollbacks, then why the run ended
    log = (tmp_path / "r" / "train.log").read_text()
    assert log.count("warning: step") >= 2 and log.count("rolled back to step 4") == 2
    assert "error: training diverged" in log.splitlines()[-1]
    from gankit.report import write_report

    assert "rolled back to step 4" in write_report(tmp_path / "r").read_text().split('id="warnings"')[1][:5000]


def test_nonfinite_weights_never_overwrite_a_good_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(LOSSES, "ns", _nan_after(4))
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=8", "log.ckpt_every=2",
                                             "recover.skip_nonfinite=false"])
    gankit.train(cfg, tmp_path / "r")
    assert "weights are not finite; checkpoint not written" in capsys.readouterr().err
    ck = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["nets"]["D"].values() if v.is_floating_point())


def test_disk_full_during_checkpoint_keeps_the_old_one(tmp_path, monkeypatch, capsys):
    import errno

    from gankit.cli import main
    from gankit.training import checkpoint as ckmod

    real = ckmod.torch.save
    calls = {"n": 0}

    def fills_up(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] >= 2:  # the first checkpoint fits, the second finds the disk full
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckmod.torch, "save", fills_up)
    out = tmp_path / "r"
    argv = ["train", "--out", str(out), "--steps", "6", *[a for s in TINY for a in ("--set", s)],
            "--set", "log.ckpt_every=3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "could not write the step 6 checkpoint" in err and "No space left on device" in err
    assert "the previous checkpoint (step 3) is intact" in err
    monkeypatch.setattr(ckmod.torch, "save", real)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3
    assert not list((out / "checkpoints").glob("new-*")) and not list((out / "checkpoints").glob(".*.tmp"))


@pytest.mark.parametrize("stop_at", [2, 5, 7])
def test_resume_after_a_signal_between_checkpoints_is_exact(tmp_path, monkeypatch, stop_at):
    """SIGINT mid-way between two checkpoint intervals (every 4 steps): the run writes a
    checkpoint where it stopped, and resuming it ends bitwise equal to the run left alone."""
    from gankit.tasks.generate import task as engine  # where the step calls g_phase

    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=9", "log.ckpt_every=4"])
    whole = gankit.train(cfg, tmp_path / "whole")
    real_g_step, calls = engine.g_phase, {"n": 0}

    def g_step_then_signal(*a, **k):
        out = real_g_step(*a, **k)
        calls["n"] += 1
        if calls["n"] == stop_at:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during this step
        return out

    monkeypatch.setattr(engine, "g_phase", g_step_then_signal)
    part = gankit.train(cfg, tmp_path / "part")
    assert part.interrupted == "SIGINT" and part.step == stop_at
    monkeypatch.setattr(engine, "g_phase", real_g_step)
    resumed = gankit.train(cfg, tmp_path / "part", resume=True)
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    assert b["step"] == 9
    for key in ("G", "D"):
        for k in a["nets"][key]:
            assert torch.equal(a["nets"][key][k], b["nets"][key][k]), (key, k)
