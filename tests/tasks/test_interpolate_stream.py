"""The frame-interpolation task on the streaming path: a run on streamed triplets is bitwise the
run on the same triplets in memory, and a run killed mid-epoch (SIGKILL) and resumed ends
bitwise equal to the run left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.media.video import VideoWriter
from gankit.training.checkpoint import load_checkpoint

TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=1",
        "log.grid_every=1000", "interpolate.grid_examples=2", "train.precision=fp32", "data.workers=1",
        "data.resolution=16", "eval.every=0"]


def _clip(path, n, shift):
    """A square moving right by one pixel per frame, from column `shift`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 24) as w:
        for i in range(n):
            f = np.zeros((16, 16, 3), np.uint8)
            x = (i + shift) % 10
            f[4:10, x:x + 6] = 255
            w.write(f)
    return path


@pytest.fixture
def videos(tmp_path, tmp_cache):
    root = tmp_path / "v"
    _clip(root / "a.mp4", 9, 0)
    _clip(root / "b.mp4", 8, 3)
    _clip(root / "test" / "t.mp4", 6, 5)
    return root


def _nets(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["nets"]


def _same(a, b):
    for n in a:
        for k in a[n]:
            assert torch.equal(a[n][k], b[n][k]), (n, k)


def test_streamed_steps_equal_in_memory_steps_eager_and_graph_shaped(videos):
    """Flow-guided (the preset's default): the trainer's steps on fetched batches and the workers'
    warps give the weights the in-memory triplets and their cached warps give, bit for bit, over
    an epoch boundary (13 triplets, 4 steps of 4); the graph-shaped step (draw's tensors copied
    into static buffers) too."""
    from gankit.tasks import get_task
    from gankit.training.engine import Engine

    def weights(load, mode):
        cfg = load_config("frame-interp", overrides=[*TINY, f"data.source={videos}", f"data.load={load}"])
        data = get_task("interpolate").load_data(cfg, torch.device("cpu"))
        assert data.resident == (load == "memory")
        e = Engine.build(cfg, data, torch.device("cpu"), mode=mode)
        for t in range(4):
            e.step(t)
        return torch.cat([p.detach().flatten() for m in e.st.nets.values() for p in m.parameters()])

    want = weights("memory", "eager")
    assert torch.equal(weights("stream", "eager"), want)
    assert torch.equal(weights("stream", "static"), want)


@pytest.mark.slow  # two whole runs through gankit.train: ~10 s on two busy cores
def test_a_streamed_run_equals_the_in_memory_run(videos, tmp_path):
    """Flow-guided (the preset's default): the workers' batches and warps give the weights the
    in-memory triplets and their cached warps give, bit for bit, over an epoch boundary (13
    triplets, 4 steps of 4)."""
    runs = {}
    for load in ("memory", "stream"):
        cfg = load_config("frame-interp", overrides=[*TINY, f"data.source={videos}", f"data.load={load}",
                                                      "train.steps=4"])
        runs[load] = gankit.train(cfg, str(tmp_path / load))
    log = (runs["stream"].dir / "train.log").read_text()
    assert "data: streaming from v/: 13 triplets of 3x16x16 from 2 videos (0.0 GB decoded; data.load=stream, " \
           "flow warps included), 1 worker, warps computed by the workers" in log
    assert "data: in memory: 13 triplets" in (runs["memory"].dir / "train.log").read_text()
    _same(_nets(runs["memory"].dir), _nets(runs["stream"].dir))


@pytest.mark.slow  # three training processes: ~25 s on two busy cores
def test_sigkill_mid_epoch_then_resume_equals_the_run_left_alone(videos, tmp_path, tmp_cache, sigkill_mid_run):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANKIT_CACHE": str(tmp_cache)}
    common = ["--preset", "frame-interp", "--data", str(videos), "--steps", "10", "--device", "cpu",
              *[a for s in TINY if not s.startswith("device") for a in ("--set", s)],
              "--set", "data.load=stream", "--set", "log.ckpt_every=4", "--set", "interpolate.flow=false"]

    def train(*args):
        p = subprocess.run([sys.executable, "-m", "gankit", "train", *args], env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]

    train("--out", str(tmp_path / "whole"), *common)
    out = tmp_path / "part"
    sigkill_mid_run("gankit.tasks.interpolate.task:interpolate_phase", 0.2, ["train", "--out", str(out), *common], out,
                    env, wait=180)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4  # 16 of 13 triplets: mid-epoch 2
    train("--resume", str(out), "--steps", "10")
    _same(_nets(tmp_path / "whole"), _nets(out))
    assert "streaming from v/" in (out / "train.log").read_text()
