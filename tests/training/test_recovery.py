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
from gankit.training.checkpoint import load_checkpoint
from gankit.training.store import CheckpointStore
from gankit.util import sha256_file

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


def _disk_full_at(monkeypatch, failing: set[int]):
    """torch.save fails as on a full disk at the checkpoint files numbered in `failing` (1, 2, ...):
    some bytes land, then torch's zip writer raises its RuntimeError over the OSError. Writers that
    are not files (what measures a checkpoint's size) are left alone."""
    import errno
    import io

    from gankit.training import checkpoint as ckmod

    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        if not isinstance(f, io.IOBase):
            return real(obj, f, *a, **k)
        calls["n"] += 1
        if calls["n"] in failing:
            f.write(b"partial")
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckmod.torch, "save", save)


def test_disk_full_during_training_warns_keeps_every_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    """Checkpoints every 3 of 12 steps; the disk is full from the third on. Each failed checkpoint
    is one warning (terminal and train.log) with the reason, the free space, the size needed and
    the last good checkpoint; training goes on; the run exits 2 saying its final checkpoint is
    missing; the earlier checkpoints are intact; --resume works once there is room again."""
    from gankit.cli import main

    _disk_full_at(monkeypatch, {3, 4})
    out = tmp_path / "r"
    ck = out / "checkpoints"
    argv = ["train", "--out", str(out), "--steps", "12", *[a for s in TINY for a in ("--set", s)],
            "--set", "log.ckpt_every=3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    warned = [ln for ln in err.splitlines() if "could not write" in ln and "error:" not in ln]
    assert [ln.split(":")[1].strip() for ln in warned] == ["step 9", "step 12"]  # one line per failed checkpoint
    for ln, step in zip(warned, (9, 12)):
        assert ln.startswith(f"gankit: step {step}: could not write the step {step} checkpoint in {ck}: "
                             "no space left on device (")
        assert " free, " in ln and " needed); " in ln
        assert ln.endswith(f"the last good checkpoint is step 6 ({ck / 'last.pt'}); training goes on and "
                           "tries again at the next checkpoint")
    last = err.strip().splitlines()[-1]
    assert last.startswith("gankit: error: the run ended at step 12 without its final checkpoint: could not write "
                           "the step 12 checkpoint") and last.endswith(f"gankit train --resume {out}")
    assert "Traceback" not in err
    log = (out / "train.log").read_text()
    assert [ln.split(" warning: ")[1] for ln in log.splitlines() if " warning: " in ln] == \
        [w.removeprefix("gankit: ") for w in warned]
    assert log.splitlines()[-1].split(" ", 2)[2] == last.removeprefix("gankit: ")
    assert [json.loads(r)["step"] for r in (out / "metrics.jsonl").read_text().splitlines()] == list(range(1, 13))
    # every earlier checkpoint intact: listed, matching its SHA-256, loadable; no partial file left
    monkeypatch.undo()
    assert sorted(p.name for p in ck.iterdir()) == ["last.pt", "manifest.json", "step_00000003.pt"]
    manifest = json.loads((ck / "manifest.json").read_text())["checkpoints"]
    assert [(e["file"], e["step"]) for e in manifest] == [("step_00000003.pt", 3), ("last.pt", 6)]
    for e in manifest:
        assert sha256_file(ck / e["file"]) == e["sha256"] and load_checkpoint(ck / e["file"])["step"] == e["step"]
    # the space is back: the run continues from step 6 and ends at 12
    assert main(["train", "--resume", str(out)]) == 0
    assert "resuming" in capsys.readouterr().err
    assert load_checkpoint(ck / "last.pt")["step"] == 12
    assert [json.loads(r)["step"] for r in (out / "metrics.jsonl").read_text().splitlines()] == list(range(1, 13))


def test_one_failed_checkpoint_then_room_again_ends_cleanly(tmp_path, monkeypatch, capsys):
    _disk_full_at(monkeypatch, {2})  # the step 6 checkpoint fails; 9 and 12 find room
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=12", "log.ckpt_every=3"]),
                       tmp_path / "r")
    err = capsys.readouterr().err
    assert run.step == 12 and err.count("could not write") == 1 and "step 6: could not write" in err
    assert "the last good checkpoint is step 3" in err
    assert load_checkpoint(run.dir / "checkpoints" / "last.pt")["step"] == 12


@pytest.fixture
def small_fs(tmp_path):
    """A real 2 MB file system (tmpfs), for a disk that truly fills; skipped where mounting is not
    allowed (not root, no CAP_SYS_ADMIN)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_real_full_disk_during_training(small_fs, monkeypatch, capsys):
    """The same story on a file system that really fills up (torch's own zip writer failing):
    after step 5 a ballast file leaves 20 kB, less than a checkpoint (~67 kB)."""
    from gankit.cli import main
    from gankit.tasks.generate import task as engine

    ballast, real_g, calls = small_fs / "ballast", engine.g_phase, {"n": 0}

    def g_step_then_fill(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            st = os.statvfs(small_fs)
            ballast.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 20_000))
        return real_g(*a, **k)

    monkeypatch.setattr(engine, "g_phase", g_step_then_fill)
    out, ck = small_fs / "r", small_fs / "r" / "checkpoints"
    argv = ["train", "--out", str(out), "--steps", "9", *[a for s in TINY for a in ("--set", s)],
            "--set", "log.ckpt_every=3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    warned = [ln for ln in err.splitlines() if "could not write" in ln and "error:" not in ln]
    assert [ln.split(":")[1].strip() for ln in warned] == ["step 6", "step 9"], err
    assert all("no space left on device (" in ln and "the last good checkpoint is step 3" in ln for ln in warned)
    assert "without its final checkpoint" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert sorted(p.name for p in ck.iterdir()) == ["last.pt", "manifest.json"]  # no partial file
    assert load_checkpoint(ck / "last.pt")["step"] == 3
    ballast.unlink()
    monkeypatch.undo()
    assert main(["train", "--resume", str(out)]) == 0
    assert load_checkpoint(ck / "last.pt")["step"] == 9


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
