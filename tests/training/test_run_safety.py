"""What users hit: a run killed before its first checkpoint, checkpoints by wall clock, a corrupt
last.pt met on resume, and a user's own images trained at their own channels and size."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.training.checkpoint import load_checkpoint

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[8]", "model.d_hidden=[8]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000"]


def test_resume_before_the_first_checkpoint_starts_from_step_0(tmp_path, capsys):
    """SIGKILL before ckpt_every: the directory holds config.yaml and logs, no checkpoint.
    --resume starts again from step 0 of that config, says so, and ends where a fresh run does."""
    out = tmp_path / "r"
    gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=4"]), str(out))
    for f in (out / "checkpoints").iterdir():  # as if killed at step 3 of 4, before any checkpoint
        f.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "no checkpoint was written before the run stopped; starting from step 0" in err
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
    fresh = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=4"]), str(tmp_path / "fresh"))
    a = load_checkpoint(fresh.dir / "checkpoints" / "last.pt")["nets"]["G"]
    b = load_checkpoint(out / "checkpoints" / "last.pt")["nets"]["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]  # the first attempt's rows were dropped, not doubled


def test_resume_of_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_checkpoints_by_wall_clock(tmp_path):
    """log.ckpt_minutes: with ckpt_every far away, a checkpoint still lands at each log step once
    the interval has passed (here: at once)."""
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=6", "log.ckpt_every=1000",
                                                          "log.ckpt_minutes=1e-9", "log.keep_last=5"]),
                       str(tmp_path / "r"))
    manifest = json.loads((run.dir / "checkpoints" / "manifest.json").read_text())["checkpoints"]
    assert [e["step"] for e in manifest] == [2, 4, 6]
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=6", "log.ckpt_every=1000"]),
                       str(tmp_path / "slow"))  # the default 10 minutes: only the final checkpoint
    manifest = json.loads((run.dir / "checkpoints" / "manifest.json").read_text())["checkpoints"]
    assert [e["step"] for e in manifest] == [6]


def test_corrupt_last_checkpoint_is_named_and_moved_aside(tmp_path, capsys):
    """The reported case: last.pt (step 6) truncated, checkpoints every 2 steps. Resume says
    which file failed and how many steps were lost (stderr and train.log), moves it to corrupt/,
    continues from step 4, and never rotates or re-hashes the bad bytes."""
    out = tmp_path / "r"
    gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=6", "log.ckpt_every=2"]), str(out))
    ck = out / "checkpoints"
    (ck / "last.pt").write_bytes((ck / "last.pt").read_bytes()[:300])
    bad_hash = hashlib.sha256((ck / "last.pt").read_bytes()).hexdigest()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--steps", "8", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "last.pt" in err and "2 steps" in err
    assert "last.pt" in (out / "train.log").read_text().split("step: eager")[-2]  # logged on resume
    assert any((ck / "corrupt").iterdir())
    manifest = json.loads((ck / "manifest.json").read_text())["checkpoints"]
    for e in manifest:  # every listed file is what the manifest says, and none is the bad one
        digest = hashlib.sha256((ck / e["file"]).read_bytes()).hexdigest()
        assert digest == e["sha256"] != bad_hash
    assert load_checkpoint(ck / "last.pt")["step"] == 8


def _rgb_folder(root, n=24, size=40):
    root.mkdir()
    g = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((g.random((size, size, 3)) * 255).astype(np.uint8)).save(root / f"{i}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_users_rgb_images_keep_their_channels_and_the_nearest_size(tmp_path, capsys):
    """--data replacing dcgan's MNIST: 40x40 RGB photos train as 3x32x32 (the supported size
    nearest 40), said once on stderr and in train.log; the unreadable file is skipped with a
    warning; --batch sets the batch."""
    src = _rgb_folder(tmp_path / "photos")
    out = tmp_path / "r"
    argv = ["train", "--preset", "dcgan", "--data", str(src), "--steps", "2", "--batch", "4",
            "--set", "model.g_width=4", "--set", "model.d_width=4", "--no-progress", "--device", "cpu"]
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "trained at 32, the nearest to the data's 40" in err and "broken.jpg" in err
    log = (out / "train.log").read_text()
    assert "broken.jpg" in log and "nearest" in log
    run = gankit.load(str(out))
    assert tuple(run.data_meta["shape"]) == (3, 32, 32) and run.config.train.batch == 4
    assert main([*argv, "--out", str(tmp_path / "strict"), "--strict-data"]) == 2
    assert "broken.jpg" in capsys.readouterr().err and not (tmp_path / "strict").exists()
