import json
import os

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint, save_checkpoint

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]", "model.z_dim=4",
        "train.batch=8", "log.progress=false", "log.every=2", "log.grid_every=3", "log.grid_n=4",
        "device=cpu"]


def tiny(steps=5, *more):
    return load_config("seed-mlp", overrides=[*TINY, f"train.steps={steps}", *more])


def test_run_directory_contents(tmp_path):
    run = gankit.train(tiny(5), tmp_path / "r")
    files = {p.relative_to(run.dir).as_posix() for p in run.dir.rglob("*") if p.is_file()}
    assert {"config.yaml", "metrics.jsonl", "loss.png", "progress.gif", "checkpoints/last.pt", "data.png",
            "report.html", "samples/step_000000.png", "samples/step_000003.png", "samples/step_000005.png"} <= files
    log = (run.dir / "train.log").read_text()
    assert "command: python " in log and "(gankit.train)" in log  # the Python call, when no command line is given
    html = (run.dir / "report.html").read_text()
    assert "data:image/gif;base64," in html  # written again after the animation, at the end
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 5]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake", "acc", "steps_per_s"} <= set(rows[0])
    assert all(0 <= r["acc_real"] <= 1 and 0 <= r["d_fake"] <= 1 for r in rows)
    ck = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert ck["step"] == 5 and {"nets", "opts", "samplers", "rng", "config", "task"} <= set(ck) and set(ck["nets"]) == {"G", "D"}
    assert ck["config"]["train"]["batch"] == 8 and ck["samplers"]["x"]["consumed"] == 40


def test_sample_api(tmp_path):
    run = gankit.train(tiny(2), tmp_path / "r")
    a, b = run.sample(6, seed=1), gankit.load(tmp_path / "r").sample(6, seed=1)
    assert a.shape == (6, 1, 8, 8) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, run.sample(6, seed=2))
    assert run.interpolate(pairs=2, steps=5, seed=0).shape == (10, 1, 8, 8)
    with pytest.raises(GankitError):
        run.sample(0)


def test_zero_steps_still_a_complete_run(tmp_path):
    run = gankit.train(tiny(0), tmp_path / "r")
    assert run.step == 0 and (run.dir / "checkpoints" / "last.pt").exists()


def test_same_seed_same_weights_and_resume_is_exact(tmp_path):
    whole = gankit.train(tiny(9), tmp_path / "whole")
    again = gankit.train(tiny(9), tmp_path / "again")
    part = gankit.train(tiny(4), tmp_path / "part")
    with open(part.dir / "metrics.jsonl", "a") as f:  # a line written after the checkpoint, then a crash
        f.write('{"step": 5, "loss_d": 9}\n')
    resumed = gankit.train(tiny(9), tmp_path / "part", resume=True)
    for p, q, r in zip(whole.G.parameters(), again.G.parameters(), resumed.G.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r)
    assert resumed.step == 9
    ckw = load_checkpoint(whole.dir / "checkpoints" / "last.pt")
    ckr = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")
    for k in ckw["nets"]["D"]:
        assert torch.equal(ckw["nets"]["D"][k], ckr["nets"]["D"][k])
    steps = [json.loads(x)["step"] for x in (resumed.dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 9]


def test_existing_run_not_overwritten(tmp_path):
    gankit.train(tiny(1), tmp_path / "r")
    with pytest.raises(GankitError, match="already holds a run; continue it with --resume"):
        gankit.train(tiny(1), tmp_path / "r")


def test_resume_with_changed_config_refused(tmp_path):
    gankit.train(tiny(1), tmp_path / "r")
    with pytest.raises(GankitError, match=r"config differs.*train.lr_g: 0.0002 -> 0.001"):
        gankit.train(tiny(2, "train.lr_g=1e-3"), tmp_path / "r", resume=True)
    with pytest.raises(GankitError, match="no checkpoint"):
        gankit.train(tiny(2), tmp_path / "other", resume=True)


def test_resume_may_change_the_micro_batch_and_the_loader(tmp_path):
    """How the same maths is laid out (accumulation, where and by how many workers images are read)
    may change on resume; what is learned may not."""
    gankit.train(tiny(1), tmp_path / "r")
    run = gankit.train(tiny(2, "train.batch_gpu=4", "data.workers=0", "data.prefetch=3", "data.memory_budget=8"),
                       tmp_path / "r", resume=True)
    assert run.step == 2
    with pytest.raises(GankitError, match=r"config differs.*train.batch: "):
        gankit.train(tiny(3, "train.batch=4"), tmp_path / "r", resume=True)


def test_toy_points_run(tmp_path):
    cfg = load_config("seed-mlp", overrides=[*TINY, "data.source=ring8", "train.steps=3"])
    run = gankit.train(cfg, tmp_path / "t")
    pts = run.sample(10, seed=0)
    assert pts.shape == (10, 2) and pts.dtype == torch.float32
    assert (run.dir / "samples" / "step_000003.png").exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    run = gankit.train(tiny(1), tmp_path / "r")
    marker = str(tmp_path / "pwned")
    ckpt = run.dir / "checkpoints" / "last.pt"
    torch.save({"format": "gankit-checkpoint", "evil": _RunsCode(marker)}, ckpt)
    with pytest.raises(GankitError, match="refused to load.*not plain checkpoint data"):
        gankit.load(ckpt)  # the file itself: no manifest check in front of the unpickler
    with pytest.raises(GankitError, match="no usable checkpoint.*SHA-256 does not match"):
        gankit.load(run.dir)
    assert not os.path.exists(marker)


def test_truncated_checkpoint_reported(tmp_path):
    run = gankit.train(tiny(1), tmp_path / "r")
    ckpt = run.dir / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(GankitError, match="corrupt or truncated checkpoint"):
        gankit.load(ckpt)


def test_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    run = gankit.train(tiny(6, "log.ckpt_every=2", "log.keep_last=2"), tmp_path / "r")
    ck = run.dir / "checkpoints"
    assert sorted(p.name for p in ck.glob("*.pt")) == ["last.pt", "step_00000004.pt"]
    manifest = json.loads((ck / "manifest.json").read_text())["checkpoints"]
    assert [(e["file"], e["step"]) for e in manifest] == [("step_00000004.pt", 4), ("last.pt", 6)]
    (ck / "last.pt").write_bytes((ck / "last.pt").read_bytes()[:500])  # a torn write
    back = gankit.load(run.dir)
    assert back.step == 4
    assert "skipped damaged checkpoint last.pt" in capsys.readouterr().err
    resumed = gankit.train(tiny(6, "log.ckpt_every=2", "log.keep_last=2"), run.dir, resume=True)
    assert resumed.step == 6


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"step": 1}, path)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(GankitError, match="no CUDA GPU is available"):
        gankit.train(tiny(1, "device=cuda"), tmp_path / "r")


def test_report_refreshed_during_training_and_failure_never_stops_the_run(tmp_path, monkeypatch):
    """report.html is rewritten at every grid step; a report that raises is noted once in
    train.log and training goes on to its last checkpoint."""
    from gankit.training import artifacts

    calls = []
    real = artifacts.write_report
    monkeypatch.setattr(artifacts, "write_report", lambda out: calls.append(out) or real(out))
    gankit.train(tiny(6), tmp_path / "ok")
    assert len(calls) == 3  # grid steps 3 and 6, then once more at the end, with the animation

    def broken(out):
        raise ValueError("boom")

    monkeypatch.setattr(artifacts, "write_report", broken)
    run = gankit.train(tiny(6), tmp_path / "bad")
    assert run.step == 6 and (run.dir / "checkpoints" / "last.pt").exists()
    log = (run.dir / "train.log").read_text()
    assert log.count("report.html not written: ValueError: boom") == 1


def test_pictures_the_disk_refuses_are_one_warning_each_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    """Grids, data.png and loss.png on a full disk: one warning per file (terminal
    and train.log, not one per grid step), no partial file, and the run ends with its checkpoint."""
    import errno

    from matplotlib.figure import Figure
    from PIL import Image

    def full(self, fp, *a, **k):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)  # grids, data.png
    monkeypatch.setattr(Figure, "savefig", full)  # loss.png
    run = gankit.train(tiny(6), tmp_path / "r")  # grids at steps 0, 3, 6
    assert run.step == 6 and load_checkpoint(run.dir / "checkpoints" / "last.pt")["step"] == 6
    refused = [ln for ln in capsys.readouterr().err.splitlines() if "cannot write" in ln]
    assert sorted(ln.split("cannot write ")[1].split(":")[0] for ln in refused) == \
        [str(run.dir / f) for f in ("data.png", "loss.png", "samples/step_000000.png")]  # no grids: no animation
    assert all("no space left on device (" in ln and ln.endswith("; training goes on without it") for ln in refused)
    log = (run.dir / "train.log").read_text()
    assert [ln.split(" warning: ")[1] for ln in log.splitlines() if "cannot write" in ln] == \
        [ln.removeprefix("gankit: ") for ln in refused]
    assert not [p for p in run.dir.rglob("*") if "partial" in p.name or p.suffix in (".png", ".gif")]


def test_cli_records_the_command(tmp_path):
    from gankit.cli import main

    assert main(["train", "--preset", "seed-mlp", "--steps", "2", "--out", str(tmp_path / "r"),
                 *[a for o in TINY for a in ("--set", o)]]) == 0
    log = (tmp_path / "r" / "train.log").read_text()
    assert f"command: gankit train --preset seed-mlp --steps 2 --out {tmp_path / 'r'}" in log


def test_time_limit_ends_the_run_as_its_last_step(tmp_path, monkeypatch):
    """train.max_seconds: the run stops after that much training time and finishes there as at
    train.steps (last log row, evaluation, checkpoint); a resumed call gets a budget of its own."""
    from gankit.training.engine import Engine

    step = Engine.step

    def slow(self, t):  # a 20 ms step, so 0.2 s of training is about 10 steps
        import time
        time.sleep(0.02)
        step(self, t)

    monkeypatch.setattr(Engine, "step", slow)
    cfg = load_config("seed-mlp", overrides=["train.steps=1000", "train.max_seconds=0.2", "train.batch=8",
                                             "eval.every=500", "eval.n=64", "log.progress=false", "log.every=2",
                                             "log.grid_every=1000", "device=cpu"])
    run = gankit.train(cfg, tmp_path / "r")
    assert 1 <= run.step < 200 and run.interrupted is None
    rows = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == run.step and rows[-1].get("eval")  # evaluated at the stop
    assert [r for r in rows if not r.get("eval")][-1]["step"] == run.step  # and logged there
    assert load_checkpoint(run.dir / "checkpoints" / "last.pt")["step"] == run.step
    assert f"time limit: stopped at step {run.step} of 1000" in (run.dir / "train.log").read_text()
    more = gankit.train(cfg.replace(**{"train.max_seconds": 0.4}), tmp_path / "r", resume=True)
    assert run.step < more.step < 1000
    with pytest.raises(GankitError, match="max_seconds"):
        load_config("seed-mlp", overrides=["train.max_seconds=-1"])
